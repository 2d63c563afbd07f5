-- GET /jobs/next, of any queue or of the queues named (bench/sizes.py). args: <query>, such as
-- "queue=q1&queue=q5", or "" for any queue. Counts the jobs handed out (`items`, the 200s) and
-- the empty answers (`short`, the 204s): the queues were filled beforehand, so an empty answer
-- means they ran dry, which fails the run. See report.lua.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
items, short = 0, 0

function init(args)
  local query = args[1] or ""
  wrk.method = "GET"
  wrk.path = query == "" and "/jobs/next" or "/jobs/next?" .. query
end

function response(status, headers, body)
  if status == 200 then
    items = items + 1
  elseif status == 204 then
    short = short + 1
  end
end
