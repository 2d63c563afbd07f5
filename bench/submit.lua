-- POST /jobs/submit with a new id on every request: "<prefix>-<thread>-<counter>".
-- Each wrk thread has its own Lua state, so the thread id keeps the counters apart.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local prefix
local n = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  prefix = (args[1] or "bench") .. "-" .. tid .. "-"
end

function request()
  n = n + 1
  local body = '{"jobId":"' .. prefix .. n .. '","description":"bench","data":{"n":' .. n .. '}}'
  return wrk.format("POST", "/jobs/submit", headers, body)
end
