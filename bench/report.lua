-- Shared by the bench scripts: each thread gets an id, and the run ends with one JSON line
-- (prefixed "BENCH ") that bench/run.py parses. Latencies are in microseconds.
-- A script that counts jobs inside its answers (the batch scripts) keeps the per-thread globals
-- `items` (jobs handed out or accepted), `item_errors` (items refused), `short` (answers with
-- fewer jobs than asked) and `used_up` (it ran out of the ids it was given); they are summed over
-- the threads here, and reported as -1 when no thread keeps them.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

local function total(name)
  local sum, kept = 0, false
  for _, thread in ipairs(threads) do
    local value = thread:get(name)
    if value ~= nil then
      sum, kept = sum + value, true
    end
  end
  return kept and sum or -1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,' ..
    '"items":%d,"item_errors":%d,"short":%d,"used_up":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99),
    total("items"), total("item_errors"), total("short"), total("used_up")))
end
