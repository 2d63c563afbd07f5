-- POST /jobs/submit of one new job with a queue and a priority (bench/sizes.py). args: <prefix>
-- <queues> <priorities>, both comma-separated lists whose frequencies are the mix: job n takes
-- the n-th of each (cycling). Its id starts with a hash of n, so that new ids land all over the
-- job_id index as random ids (UUIDs) do, and ends with "<prefix>-<thread>-<n>", which keeps it
-- new.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local prefix
local queues, priorities = {}, {}
local n = 0
local headers = { ["Content-Type"] = "application/json" }

local function split(text, into)
  for item in string.gmatch(text, "[^,]+") do
    into[#into + 1] = item
  end
end

function init(args)
  prefix = (args[1] or "bench") .. "-" .. tid .. "-"
  split(args[2] or "default", queues)
  split(args[3] or "0", priorities)
end

function request()
  n = n + 1
  local id = string.format("%08x-%s%d", (n * 2654435761) % 4294967296, prefix, n)
  local body = string.format(
    '{"jobId":"%s","description":"bench","data":{"n":%d},"queue":"%s","priority":%s}',
    id, n, queues[n % #queues + 1], priorities[n % #priorities + 1])
  return wrk.format("POST", "/jobs/submit", headers, body)
end
