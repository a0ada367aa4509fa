-- wrk script for bench/gateway: one request shape from the environment,
-- optional pacing per connection, one parseable result line at the end.
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     file whose bytes are the request body (POST)
--   BENCH_AUTH     value of the Authorization header (optional)
--   BENCH_DELAY_MS mean pause before each request on a connection, may be
--                  fractional: wrk's delay() takes whole milliseconds, so each
--                  pause is floor or ceil at random with the right mean.
-- With c connections, pause d and latency L the rate is about c / (d + L):
-- no fixed rate.  bench.sh uses it for the /v1 comparison (same settings on
-- both sides); the fixed-rate dashboard run uses ss-bench-paced (tools/paced).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  local f = assert(io.open(body, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
if pace > 0 then
  local lo = math.floor(pace)
  local frac = pace - lo
  function setup(thread) thread:set("seed", math.random(1, 1e9)) end
  function init(args) math.randomseed((seed or 1) + os.time()) end
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
