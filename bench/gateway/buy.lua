-- wrk script for bench/gateway's /v2 buy comparison, in two modes:
--   BENCH_MODE=collect  POST BENCH_BODY (a shipment) and append "<shp_id> <rate_id>"
--                       of each 201 to BENCH_IDS.<thread>: shipments to buy later
--   BENCH_MODE=buy      POST /v2/shipments/<id>/buy {"rate":{"id":<rate>}}, each
--                       shipment of BENCH_IDS (one line each, never twice; split
--                       between the threads, BENCH_THREADS of them); bench.sh
--                       collects more shipments than a run can buy
-- BENCH_AUTH: the Authorization header; BENCH_DELAY_MS as in paced.lua.
-- The base URL's path ("/v2") is the prefix of the buy path.
local mode = os.getenv("BENCH_MODE") or "buy"
local ids = os.getenv("BENCH_IDS") or "/tmp/bench-ids"
local auth = os.getenv("BENCH_AUTH")
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("idx", counter)
end

local queue, qi, out = {}, 1, nil
function init(args)
  if mode == "collect" then
    out = assert(io.open(ids .. "." .. idx, "a"))
    local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
    wrk.body = f:read("*a")
    f:close()
  else
    -- every line, split by line number between the threads
    local total = tonumber(os.getenv("BENCH_THREADS") or "1")
    local i = 0
    for line in io.lines(ids) do
      if i % total == idx - 1 then table.insert(queue, line) end
      i = i + 1
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
end

function request()
  if mode == "collect" then return wrk.format(nil, wrk.path) end
  local line = queue[qi]
  if not line then -- bench.sh collects more than a run can buy: not reached
    pcall(function() wrk.thread:stop() end)
    return wrk.format("GET", wrk.path .. "/shipments?page_size=1")
  end
  qi = qi + 1
  local shp, rate = line:match("^(%S+) (%S+)$")
  return wrk.format(nil, wrk.path .. "/shipments/" .. shp .. "/buy",
                    nil, '{"rate":{"id":"' .. rate .. '"}}')
end

function response(status, headers, body)
  if mode == "collect" and status == 201 then
    local shp = body:match('"id":"(shp_[%w_]+)"')
    local rate = body:match('"id":"(rate_[%w_]+)"')
    if shp and rate then out:write(shp, " ", rate, "\n") end
  end
end

if pace > 0 then
  local lo = math.floor(pace)
  local frac = pace - lo
  function delay()
    if math.random() < frac then return lo + 1 end
    return lo
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d socket_errors=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
