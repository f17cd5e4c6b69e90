-- wrk script: POST a 10 MiB body to /upload
wrk.method = "POST"
wrk.path = "/upload"
wrk.body = string.rep("x", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
