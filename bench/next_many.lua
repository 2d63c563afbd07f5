-- GET /jobs/next?count=N (CONTRACT §10). args: <N>. Counts the jobs handed out (`items`) and
-- the answers holding fewer than N (`short`): on a queue filled beforehand, that means it ran
-- low, which bench/run.py treats as running dry. See report.lua.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local count
items, short = 0, 0

function init(args)
  count = tonumber(args[1] or "10")
  wrk.method = "GET"
  wrk.path = "/jobs/next?count=" .. count
end

function response(status, headers, body)
  if status == 200 then
    -- Every job in the array carries its jobId once; the bench's data holds no such key.
    local _, got = body:gsub('"jobId":"', "")
    items = items + got
    if got < count then
      short = short + 1
    end
  end
end
