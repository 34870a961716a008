-- wrk script: send `depth` GET requests in one write per round trip.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local req

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
