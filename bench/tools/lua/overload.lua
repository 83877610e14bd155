-- Overload runs: counts responses by status in total and per second, and measures latency by
-- status for servers that echo X-Request-Id (ours does; the reference does not, so there only the
-- counts are known). Each request carries a unique id and its start time is kept until its
-- response names it. This adds Lua work per request, equally for every server measured.
-- Loaded after report.lua: it adds `report_extra`, which that file's `done` calls. Loaded after
-- random.lua too, it keeps that file's setup() and init() and sends its requests (`pick_request`).
--
-- Why C arrays: wrk 4.1's thread:get() corrupts the Lua stack when it copies a table (nested ones
-- crash wrk), so each thread counts into arrays that the main state allocates in setup() and reads
-- directly in done(); only plain numbers cross between states.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- Status classes for the per-second and latency arrays; exact codes are counted separately.
local CLASSES = { "2xx", "3xx", "4xx", "429", "503", "5xx" }
local function class_of(status)
  if status == 429 then return 3 end
  if status == 503 then return 4 end
  if status >= 500 then return 5 end
  if status >= 400 then return 2 end
  if status >= 300 then return 1 end
  return 0
end
local NCLASS = #CLASSES
local MAX_STATUS = 600
local MAX_SECONDS = 7200
-- Latency buckets of about 5%: bucket b holds latencies near exp(b / 20) microseconds.
local BUCKETS_PER_E = 20
local MAX_BUCKET = 400

local function layout(base)
  local counters = ffi.cast("double *", base)
  return counters,                                   -- [status]
    counters + MAX_STATUS,                           -- [second * NCLASS + class]
    counters + MAX_STATUS + MAX_SECONDS * NCLASS     -- [class * MAX_BUCKET + bucket]
end
local SIZE = MAX_STATUS + MAX_SECONDS * NCLASS + NCLASS * MAX_BUCKET

-- Main state: one zeroed block per thread, kept referenced here so it is never collected.
local blocks = {}
local start_us = now_us()
local base_setup, base_init = setup, init

setup = function(thread)
  if base_setup then base_setup(thread) end
  local block = ffi.new("double[?]", SIZE)
  blocks[#blocks + 1] = block
  thread:set("thread_id", #blocks)
  thread:set("block_address", tonumber(ffi.cast("uintptr_t", block)))
  thread:set("start_us", start_us)
end

-- Thread states:
local statuses, seconds, buckets
local started = {}   -- request id -> start time
local sequence = 0

init = function(args)
  if base_init then base_init(args) end
  statuses, seconds, buckets = layout(ffi.cast("void *", block_address))
end

request = function()
  sequence = sequence + 1
  local id = "b" .. thread_id .. "-" .. sequence
  started[id] = now_us()
  if pick_request then
    local method, path, body = pick_request()
    local headers = { ["X-Request-Id"] = id }
    if body then headers["Content-Type"] = "application/json" end
    return wrk.format(method, path, headers, body)
  end
  wrk.headers["X-Request-Id"] = id
  return wrk.format()
end

response = function(status, headers, body)
  local now = now_us()
  local class = class_of(status)
  statuses[math.min(status, MAX_STATUS - 1)] = statuses[math.min(status, MAX_STATUS - 1)] + 1
  local second = math.min(MAX_SECONDS - 1, math.floor((now - start_us) / 1000000))
  seconds[second * NCLASS + class] = seconds[second * NCLASS + class] + 1
  local id = headers["x-request-id"] or headers["X-Request-Id"]
  local start = id and started[id]
  if start then
    started[id] = nil
    local bucket = math.min(MAX_BUCKET - 1, math.floor(math.log(math.max(1, now - start)) * BUCKETS_PER_E))
    buckets[class * MAX_BUCKET + bucket] = buckets[class * MAX_BUCKET + bucket] + 1
  end
end

report_extra = function()
  local total_status, total_seconds, total_buckets = {}, {}, {}
  for _, block in ipairs(blocks) do
    local s, sec, b = layout(block)
    for i = 0, MAX_STATUS - 1 do
      if s[i] > 0 then total_status[i] = (total_status[i] or 0) + s[i] end
    end
    for i = 0, MAX_SECONDS * NCLASS - 1 do
      if sec[i] > 0 then total_seconds[i] = (total_seconds[i] or 0) + sec[i] end
    end
    for i = 0, NCLASS * MAX_BUCKET - 1 do
      if b[i] > 0 then total_buckets[i] = (total_buckets[i] or 0) + b[i] end
    end
  end
  local parts = {}
  for code, count in pairs(total_status) do parts[#parts + 1] = string.format('"%d":%d', code, count) end
  local status_json = "{" .. table.concat(parts, ",") .. "}"
  parts = {}
  for index, count in pairs(total_seconds) do
    parts[#parts + 1] = string.format('[%d,"%s",%d]', math.floor(index / NCLASS), CLASSES[index % NCLASS + 1], count)
  end
  local seconds_json = "[" .. table.concat(parts, ",") .. "]"
  parts = {}
  for index, count in pairs(total_buckets) do
    parts[#parts + 1] = string.format('["%s",%d,%d]', CLASSES[math.floor(index / MAX_BUCKET) + 1], index % MAX_BUCKET, count)
  end
  local buckets_json = "[" .. table.concat(parts, ",") .. "]"
  io.write(string.format('WRKSTATUS {"buckets_per_e":%d,"statuses":%s,"seconds":%s,"latency_buckets":%s}\n',
    BUCKETS_PER_E, status_json, seconds_json, buckets_json))
end
