-- POST /items with the seed's body (the same request hey sends), on wrk's static request path.
wrk.method = "POST"
wrk.body = '{"name":"x","description":"y"}'
wrk.headers["Content-Type"] = "application/json"
