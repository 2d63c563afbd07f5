-- A worker's cycle: GET /jobs/next, then POST /jobs/complete (succeeded) for the job it got.
-- args: "lease" for the fenced path (next?lease=60, complete naming the answer's leaseId), or
-- "plain" for the last release's API (no lease parameter, no leaseId, which it would refuse).
-- Each wrk thread has one Lua state for all its connections, so the jobs answered and not yet
-- completed are a per-thread list: a connection completes one if there is any, else asks for
-- the next job. A 409 (lease lost) or 404 on complete is a status error, and fails the run.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local fenced = false
local todo = {}
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  fenced = args[1] == "lease"
end

function request()
  local job = table.remove(todo)
  if job == nil then
    return wrk.format("GET", fenced and "/jobs/next?lease=60" or "/jobs/next")
  end
  local body = '{"jobId":"' .. job.id .. '","status":"succeeded"'
  if fenced then
    body = body .. ',"leaseId":"' .. job.lease .. '"'
  end
  return wrk.format("POST", "/jobs/complete", headers, body .. "}")
end

function response(status, headers, body)
  -- Only next's answers hold a running job; complete's say succeeded, and a 204 has no body.
  -- The bench's own ids and the server's lease ids hold no quote, so a pattern finds them.
  if status == 200 and body:find('"state":"running"', 1, true) then
    local lease = body:match('"leaseId":"([^"]*)"')
    if fenced and lease == nil then
      error("an answer of /jobs/next without a leaseId: " .. body)
    end
    todo[#todo + 1] = { id = body:match('"jobId":"([^"]*)"'), lease = lease }
  end
end
