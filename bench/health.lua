-- GET /health: the same app stack with no store call, the ceiling for the other endpoints.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
wrk.method = "GET"
wrk.path = "/health"
