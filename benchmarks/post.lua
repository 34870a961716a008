-- wrk script: POST a 1 KiB body to /echo.
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("p", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
