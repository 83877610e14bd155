-- Random requests over the pinned table: pages at random positions, single items by random id, or
-- a mix of those with POSTs. wrk calls request() for every request, so the work is done up front:
-- each thread formats a pool of requests in init() and request() only picks one with math.random.
-- BENCH_MODE ("pages", "by-id" or "mix"), BENCH_ROWS and BENCH_LIMITS are set by the lines the bench
-- writes above this file.
--
-- The seeds are fixed per thread, so every server measured meets the same sequence of requests.
-- 65,536 requests per thread, drawn uniformly, stand for the whole table: no server caches
-- responses across requests (ours coalesces only identical requests in flight at the same time).
local POOL_SIZE = 65536

local threads_started = 0
setup = function(thread)
  threads_started = threads_started + 1
  thread:set("thread_number", threads_started)
end

-- Thread states:
local pool, methods, paths, bodies = {}, {}, {}, {}

local function page_path()
  return string.format("/items?after=%d&limit=%d", math.random(0, BENCH_ROWS - 1), BENCH_LIMITS[math.random(#BENCH_LIMITS)])
end

local function item_path()
  return "/items/" .. math.random(1, BENCH_ROWS)
end

init = function(args)
  math.randomseed(7919 * thread_number)
  for i = 1, POOL_SIZE do
    local method, path, body, headers = "GET", nil, nil, {}
    local draw = math.random()
    if BENCH_MODE == "pages" or (BENCH_MODE == "mix" and draw < 0.7) then
      path = page_path()
    elseif BENCH_MODE == "by-id" or (BENCH_MODE == "mix" and draw < 0.9) then
      path = item_path()
    else
      method, path = "POST", "/items"
      body = string.format('{"name":"mix %d-%d","description":"posted by the mix scenario"}', thread_number, i)
      headers["Content-Type"] = "application/json"
    end
    methods[i], paths[i], bodies[i] = method, path, body
    pool[i] = wrk.format(method, path, headers, body)
  end
end

request = function()
  return pool[math.random(POOL_SIZE)]
end

-- For overload.lua, which formats each request itself to give it a unique X-Request-Id.
pick_request = function()
  local i = math.random(POOL_SIZE)
  return methods[i], paths[i], bodies[i]
end
