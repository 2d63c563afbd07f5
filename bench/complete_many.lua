-- POST /jobs/complete with JSON arrays of N completions (succeeded) of jobs made running
-- beforehand (CONTRACT §10). args: <file of ids, one a line> <number of threads> <N>. Thread t
-- takes lines t, t+T, t+2T, ... as complete.lua does; once its share is used up it sets
-- `used_up` and completes unknown ids, whose per-item 404s count as `item_errors`. Items answered
-- 200 count as `items`. See report.lua.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local ids = {}
local i = 0
local size
local headers = { ["Content-Type"] = "application/json" }
items, item_errors, used_up = 0, 0, 0

function init(args)
  local nthreads = tonumber(args[2])
  size = tonumber(args[3] or "100")
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % nthreads == tid - 1 then
      ids[#ids + 1] = line
    end
    line_no = line_no + 1
  end
end

function request()
  local parts = {}
  for k = 1, size do
    i = i + 1
    local id = ids[i]
    if id == nil then
      used_up, id = 1, "bench-ids-used-up"
    end
    parts[k] = '{"jobId":"' .. id .. '","status":"succeeded"}'
  end
  return wrk.format("POST", "/jobs/complete", headers, "[" .. table.concat(parts, ",") .. "]")
end

function response(status, headers, body)
  if status == 200 then
    local _, completed = body:gsub('"status":200', "")
    local _, all = body:gsub('"status":', "")
    items = items + completed
    item_errors = item_errors + all - completed
  end
end
