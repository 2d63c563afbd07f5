-- POST /jobs/complete for jobs made running beforehand. args: <file of ids, one a line>
-- <number of threads>. Thread t takes lines t, t+T, t+2T, ...; once its share is used up it
-- completes an unknown id, so the 404s show up as errors rather than as idempotent 200s, and
-- sets `used_up` (see report.lua).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local ids = {}
local i = 0
local headers = { ["Content-Type"] = "application/json" }
used_up = 0

function init(args)
  local nthreads = tonumber(args[2])
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % nthreads == tid - 1 then
      ids[#ids + 1] = line
    end
    line_no = line_no + 1
  end
end

function request()
  i = i + 1
  local id = ids[i]
  if id == nil then
    used_up, id = 1, "bench-ids-used-up"
  end
  local body = '{"jobId":"' .. id .. '","status":"succeeded"}'
  return wrk.format("POST", "/jobs/complete", headers, body)
end
