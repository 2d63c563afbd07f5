-- GET /stats: the counts in all and per queue, with each queue's oldest due job (bench/sizes.py).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
wrk.method = "GET"
wrk.path = "/stats"
