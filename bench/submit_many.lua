-- POST /jobs/submit with a JSON array of N new jobs (CONTRACT §10), each built as submit.lua
-- builds one. args: <prefix> <N>. Counts the items answered 201 (`items`) and every other
-- item's status (`item_errors`, which fails the run); see report.lua.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local prefix
local size
local n = 0
local headers = { ["Content-Type"] = "application/json" }
items, item_errors = 0, 0

function init(args)
  prefix = (args[1] or "bench") .. "-" .. tid .. "-"
  size = tonumber(args[2] or "100")
end

function request()
  local parts = {}
  for k = 1, size do
    n = n + 1
    parts[k] = '{"jobId":"' .. prefix .. n .. '","description":"bench","data":{"n":' .. n .. '}}'
  end
  return wrk.format("POST", "/jobs/submit", headers, "[" .. table.concat(parts, ",") .. "]")
end

function response(status, headers, body)
  if status == 200 then -- any other status is already one of wrk's status errors
    local _, created = body:gsub('"status":201', "")
    local _, all = body:gsub('"status":', "")
    items = items + created
    item_errors = item_errors + all - created
  end
end
