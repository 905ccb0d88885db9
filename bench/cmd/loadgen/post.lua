-- wrk script that POSTs a rank request, to cross-check bench/cmd/loadgen against wrk:
--
--   wrk -t1 -c32 -d10s --latency -s bench/cmd/loadgen/post.lua http://127.0.0.1:8090/v1/rank
--
-- With USERS=N in the environment each request asks for a random user u0..u(N-1), like
-- loadgen -users N (a Lua call per request, which slows wrk down a little); without it
-- every request sends the same body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user_id":"u0"}'

local users = tonumber(os.getenv("USERS") or "")
if users and users > 0 then
  request = function()
    return wrk.format(nil, nil, nil, string.format('{"user_id":"u%d"}', math.random(0, users - 1)))
  end
end

-- Print the quantiles loadgen reports, in microseconds.
done = function(summary, latency, requests)
  io.write(string.format("wrk: %d requests in %.2fs, %.0f req/s, errors %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
  io.write(string.format("latency: p50 %dµs  p90 %dµs  p99 %dµs  p99.9 %dµs  max %dµs  mean %.0fµs\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
