-- GET /jobs/next against a pre-filled queue (bench/run.py checks it never ran empty: a 204 is 2xx).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
wrk.method = "GET"
wrk.path = "/jobs/next"
