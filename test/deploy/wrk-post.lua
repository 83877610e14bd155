-- POST /items for wrk (used by test/deploy/scale.ts): wrk -s test/deploy/wrk-post.lua URL/items
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local sequence = 0

-- A distinct name per request of this thread, as real clients would send.
request = function()
  sequence = sequence + 1
  return wrk.format(nil, nil, nil, '{"name":"wrk ' .. sequence .. '","description":"test:scale"}')
end
