-- Prints one machine-readable line when wrk finishes (parsed by bench/tools/wrk.ts). It defines only
-- `done`, so on its own it leaves wrk on its static request path: no Lua runs per request.
-- Latencies are in microseconds; responses slower than --timeout are counted as timeouts by wrk and
-- are not in the percentiles.
local report_percentiles = { 1, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.99 }

done = function(summary, latency, requests)
  local e = summary.errors
  local points = {}
  for _, p in ipairs(report_percentiles) do
    points[#points + 1] = string.format("[%s,%d]", tostring(p), latency:percentile(p))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"percentiles":[%s]}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max, table.concat(points, ",")))
  if report_extra then report_extra() end
end
