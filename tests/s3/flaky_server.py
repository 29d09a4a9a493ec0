#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# A loopback HTTP server that fails on purpose, for the transfer engine tests
# (tests/s3/test_xfer.c). Prints its port on the first line of stdout.
# With "--tls CERT KEY" it speaks HTTPS with that certificate.
#
# Path /MODE/ID?fail=N: the first N requests to that path fail as MODE says,
# later ones answer 200 with "ok:<attempt>:<x-sign-attempt>:<body md5>".
#   s503      503 with an S3 SlowDown error document
#   code      400 with <Code>RequestTimeout</Code>
#   throttle  400 with a CloudFormation-style Throttling / "Rate exceeded"
#   reset     close the connection without an answer
#   partial   200 with Content-Length 100000, 1000 bytes, then close
#   404       always 404 NoSuchKey (never retried)
#   slow      wait 20 s before answering (for cancellation)
#   conc      wait 50 ms, counting requests in progress (see /stats)
#   big       200 with 1 MiB of 'b'
# /count?p=/MODE/ID  how many requests that path got
# /stats             "max in flight" seen by conc
import hashlib
import http.server
import sys
import threading
import time

counts = {}
lock = threading.Lock()
active = 0
max_active = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/xml", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "req-%s" % self.attempt)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        global active, max_active
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        with lock:
            counts[path] = counts.get(path, 0) + 1
            self.attempt = counts[path]
        mode = path.split("/")[1] if "/" in path else ""
        if mode == "count":
            return self.reply(200, str(counts.get(params.get("p", ""), 0)).encode(), "text/plain")
        if mode == "stats":
            return self.reply(200, str(max_active).encode(), "text/plain")
        fails = int(params.get("fail", "0"))
        failing = self.attempt <= fails
        if mode == "404":
            return self.reply(404, b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>")
        if mode == "slow":
            time.sleep(20)
        if mode == "conc":
            with lock:
                active += 1
                max_active = max(max_active, active)
            time.sleep(0.05)
            with lock:
                active -= 1
        if mode == "big":
            return self.reply(200, b"b" * (1 << 20), "application/octet-stream")
        if failing and mode == "s503":
            return self.reply(503, b"<Error><Code>SlowDown</Code><Message>Please reduce your "
                              b"request rate.</Message></Error>")
        if failing and mode == "code":
            return self.reply(400, b"<Error><Code>RequestTimeout</Code><Message>Your socket "
                              b"connection to the server was not read from or written to "
                              b"within the timeout period.</Message></Error>")
        if failing and mode == "throttle":
            return self.reply(400, b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling"
                              b"</Code><Message>Rate exceeded</Message></Error></ErrorResponse>")
        if failing and mode == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if failing and mode == "partial":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"p" * 1000)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        out = "ok:%d:%s:%s" % (self.attempt, self.headers.get("x-sign-attempt", "-"),
                               hashlib.md5(body).hexdigest())
        return self.reply(200, out.encode(), "text/plain")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # resets and cancelled clients are the point here


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":  # --tls CERT KEY
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
