-- One wrk script for every load run of `make bench` (wrk 4.1.0, LuaJIT):
--
--   wrk -t T -c C -d 6s --latency -s bench.lua BASE_URL -- MODE [ARG]
--
-- MODE is one of
--   get_by_id N   GET /messages/<random id in 1..N>, a new id for every request
--   get_page      GET /messages
--   post KEYFILE  POST /messages with the JSON body {"message":"bench"}, with the API key
--                 read from KEYFILE (a file on the host, never a command line)
-- BASE_URL is scheme, host and port only (http://127.0.0.1:8001, https://127.0.0.1);
-- the path comes from MODE.
--
-- At the end it prints one line to stdout: "BENCH_JSON " and a JSON object with the
-- request count, duration and bytes, the error counts (status: responses above 399) and
-- the latency percentiles, all times in microseconds.

local threads = 0

-- Runs in the main Lua state, once per thread: give each thread its own number, so
-- that each seeds its random ids differently.
function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

local max_id

-- Runs in each thread's own Lua state, with the arguments after "--".
function init(args)
   local mode = args[1]
   if mode == "get_by_id" then
      max_id = tonumber(args[2])
      if not max_id or max_id < 1 then
         error("get_by_id needs the largest id: -- get_by_id N")
      end
      math.randomseed(os.time() * 1000 + (thread_number or 0))
   elseif mode == "get_page" then
      wrk.method = "GET"
      wrk.path = "/messages"
      request = nil -- the same request every time: wrk builds it once
   elseif mode == "post" then
      local file = assert(io.open(args[2] or "", "r"), "post needs the key's file: -- post KEYFILE")
      local key = file:read("*l")
      file:close()
      wrk.method = "POST"
      wrk.path = "/messages"
      wrk.headers["Content-Type"] = "application/json"
      wrk.headers["Authorization"] = "Bearer " .. key
      wrk.body = '{"message":"bench"}'
      request = nil
   else
      error("unknown mode " .. tostring(mode) .. ": use get_by_id N, get_page or post")
   end
end

-- Only get_by_id keeps this (a new path per request); the other modes remove it in init.
function request()
   return wrk.format("GET", "/messages/" .. math.random(1, max_id))
end

function done(summary, latency, requests)
   local e = summary.errors
   local mean = latency.mean
   if mean ~= mean then -- NaN: no request completed
      mean = 0
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, '
         .. '"errors": {"connect": %.0f, "read": %.0f, "write": %.0f, "status": %.0f, '
         .. '"timeout": %.0f}, '
         .. '"latency_us": {"p50": %.0f, "p90": %.0f, "p99": %.0f, "max": %.0f, '
         .. '"mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, mean
   ))
end
