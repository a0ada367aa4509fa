-- wrk script: POST the webhook body from $BENCH_BODY with X-Hmac-Signature
-- from $BENCH_SIG, closed loop (the paced runs use tools/paced, ss-bench-paced).
-- Prints one parseable line at the end.
wrk.method = "POST"
wrk.path = "/webhooks/easypost"
wrk.headers["Content-Type"] = "application/json"
local sig = os.getenv("BENCH_SIG")
if sig and sig ~= "" then wrk.headers["X-Hmac-Signature"] = sig end
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d socket_errors=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
