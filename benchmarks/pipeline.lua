-- wrk script: send `depth` requests in one write per round trip. With PIPELINE_BROWSER
-- set, each is what a browser sends for an API page (a query and eight field lines,
-- Host included by wrk); otherwise a bare GET /.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local browser = os.getenv("PIPELINE_BROWSER")
local req

init = function(args)
   local path, headers = "/", nil
   if browser then
      path = "/items/42?q=abc&page=2"
      headers = {
         ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
         ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
         ["Accept-Language"] = "en-US,en;q=0.5",
         ["Accept-Encoding"] = "gzip, deflate, br",
         ["Cookie"] = "session=8d1f9a0c3b; theme=dark",
         ["Referer"] = "https://shop.example.com/items",
         ["Connection"] = "keep-alive",
      }
   end
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, path, headers)
   end
   req = table.concat(r)
end

request = function()
   return req
end
