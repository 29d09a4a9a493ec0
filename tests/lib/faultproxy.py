#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""faultproxy: a fault-injecting HTTP/1.1 reverse proxy in front of radosgw.

The only stand-in the fault tests use: the mount (or boto3) talks to the
proxy, the proxy to the real radosgw, and rules decide which requests get a
fault. Everything else passes through untouched, Host header included, so
SigV4 signatures made for the proxy's address verify at radosgw.

    with FaultProxy("http://127.0.0.1:7480", seed=1) as p:
        p.set_rules([{"match": {"op": "GetObject"}, "action": "503",
                      "prob": 0.05}])
        ... use p.url ...
        print(p.counts, len(p.requests))

CLI: faultproxy.py --upstream URL [--rules JSON|@FILE] [--seed N] [--port N]
prints "PORT n" and serves until SIGTERM/SIGINT; with --control-stdin it
also reads lines "rules JSON", "outage on|off", "counts" (answers JSON),
"reset" from stdin.

Connections: one thread per client connection, keep-alive, each with its own
keep-alive upstream connection. Request and response bodies (Content-Length,
chunked, or up to the close) are streamed in pieces of at most 1 MiB, never
held whole, so a GiB goes through at hundreds of MB/s. An "Expect:
100-continue" is answered by the proxy at once and not forwarded.

A rule is a dict:
    match       dict; every given key must hold:
                  method     str or list ("GET", ...)
                  op         str or list of S3 operations (see s3_op())
                  path_re    regex searched in the URL-decoded path
                  query_has  str or list of query parameter names present
    action      one of ACTIONS below
    prob        0..1, chance the rule fires on a matching request (1)
    count       fire at most this many times (unlimited)
    after_bytes where an action cuts a body (default: half of it)
    seconds     for stall (10) and delay (2)
    forward     for error_200: forward the request first (True) or not
    extra       for long_body: bytes added (4096)
    skip        for replace_body: bytes of the range left out (4096)
    depth       for replace_xml: nesting depth (10,000,000)
Rules are tried in order; the first that matches and fires is applied. A
rule whose action cannot apply to the reply (a body fault on a non-2xx
reply, or on a chunked one) passes the reply through and is not counted.

Actions:
    503           503 SlowDown with an S3 XML error body (request not sent)
    500           500 InternalError with an S3 XML error body (not sent)
    reset_request read after_bytes of the request body, then RST
    reset_response forward; send the headers and after_bytes of the body, RST
    lose_reply    forward; let the upstream finish; drop its reply and close
                  the client connection (the server did the work)
    error_200     200 with an <Error><Code>InternalError</Code> body, after
                  forwarding (forward=True, default) or instead of it
    short_body    2xx GET: Content-Length and body shorter than upstream's
                  (after_bytes kept), other headers as they were
    long_body     2xx GET: extra bytes appended, Content-Length to match
    other_etag    2xx GET: the body as it was, under the ETag of another
                  version (what a stale cache or a broken proxy sends)
    replace_body  2xx GET: the real bytes of another range of the object:
                  the first `skip` bytes left out, Content-Range and
                  Content-Length rewritten to name what is sent (a 200 is
                  turned into a 206 of the tail)
    truncate      headers as upstream (full Content-Length), after_bytes of
                  the body, then a clean close (FIN)
    stall         headers and after_bytes of the body, then nothing for
                  `seconds`, then the rest
    delay         wait `seconds` before forwarding
    replace_xml   200 with a ListBucketResult nested `depth` elements deep
                  (request not sent; streamed, 7 bytes a level)

p.outage(True) closes the listener (connects are refused) and resets every
open connection; p.outage(False) listens on the same port again.
"""

import argparse
import json
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

ACTIONS = ("503", "500", "reset_request", "reset_response", "lose_reply",
           "error_200", "short_body", "long_body", "replace_body", "other_etag",
           "truncate",
           "stall", "delay", "replace_xml")
# actions that rewrite a 2xx GET body and need a Content-Length reply
_BODY = ("short_body", "long_body", "replace_body", "other_etag")

PIECE = 1 << 20
MAX_HEAD = 256 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as the proxy reads it."""


def s3_op(method, path, query, headers):
    """The S3 operation of a path-style request (method, path, query dict)."""
    parts = [p for p in path.split("/") if p]
    has_key = len(parts) >= 2
    q = query
    copy = "x-amz-copy-source" in headers
    if method == "GET":
        if not parts:
            return "ListBuckets"
        if "uploadId" in q:
            return "ListParts"
        if "uploads" in q and not has_key:
            return "ListMultipartUploads"
        if not has_key:
            if q.get("list-type") == "2":
                return "ListObjectsV2"
            for sub in ("location", "policy", "versioning", "acl", "lifecycle"):
                if sub in q:
                    return "GetBucket" + sub.capitalize()
            return "ListObjects"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT":
        if "partNumber" in q and "uploadId" in q:
            return "UploadPartCopy" if copy else "UploadPart"
        if not has_key:
            return "PutBucketPolicy" if "policy" in q else "CreateBucket"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        if "delete" in q:
            return "DeleteObjects"
        return "Post"
    if method == "DELETE":
        if "uploadId" in q:
            return "AbortMultipartUpload"
        if not has_key:
            return "DeleteBucketPolicy" if "policy" in q else "DeleteBucket"
        return "DeleteObject"
    return method


def s3_error_xml(code, message, rid):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><RequestId>faultproxy-%d</RequestId>'
            '<HostId>faultproxy</HostId></Error>' % (code, message, rid)).encode()


class _Reader:
    """Buffered reads from a socket: heads, lines and body pieces."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.scratch = bytearray(PIECE)
        self.mv = memoryview(self.scratch)

    def _fill(self):
        n = self.sock.recv_into(self.mv)
        if n == 0:
            return False
        self.buf += self.mv[:n]
        return True

    def idle(self):
        """True when nothing is buffered (no pipelined request waiting)."""
        return not self.buf

    def head(self):
        """Bytes up to and including the blank line; None on EOF before any."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                h = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return h
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("header block over %d bytes" % MAX_HEAD)
            if not self._fill():
                if self.buf:
                    raise ProtocolError("connection closed inside a header block")
                return None

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return ln
            if len(self.buf) > 65536:
                raise ProtocolError("line too long")
            if not self._fill():
                raise ProtocolError("connection closed inside a line")

    def piece(self, n):
        """Up to n bytes (at least 1) as bytes or a memoryview valid until the
        next call; b"" on EOF."""
        if self.buf:
            k = min(n, len(self.buf))
            out = bytes(self.buf[:k])
            del self.buf[:k]
            return out
        k = self.sock.recv_into(self.mv, min(n, PIECE))
        return self.mv[:k]


def _parse_head(head):
    """(first line as str, [(name, value)]) of a header block."""
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    hdrs = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ln[0] in " \t" and hdrs:  # obsolete folding
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + ln.strip())
            continue
        name, sep, value = ln.partition(":")
        if not sep:
            raise ProtocolError("bad header line %r" % ln)
        hdrs.append((name.strip(), value.strip()))
    return first, hdrs


def _hget(hdrs, name, default=None):
    name = name.lower()
    for k, v in hdrs:
        if k.lower() == name:
            return v
    return default


def _hset(hdrs, name, value):
    """A copy of hdrs with NAME set to value (removed when value is None)."""
    out = [(k, v) for k, v in hdrs if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


# Request headers whose values are secrets: recorded as present, never as sent.
REDACTED = ("authorization", "x-amz-security-token")


def _recorded_headers(hdrs):
    """{lower-cased name: value} of a request's headers for p.requests;
    repeated names joined with ", " (as HTTP folds them), secrets redacted."""
    out = {}
    for k, v in hdrs:
        k = k.lower()
        if k in REDACTED:
            v = "<redacted>"
        out[k] = out[k] + ", " + v if k in out else v
    return out


def _build_head(first, hdrs):
    return ("%s\r\n%s\r\n" % (first, "".join("%s: %s\r\n" % kv for kv in hdrs))
            ).encode("latin-1")


def _framing(hdrs, is_request, method=None, status=None):
    """('none',) | ('length', n) | ('chunked',) | ('close',)."""
    if not is_request:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return ("none",)
    te = (_hget(hdrs, "Transfer-Encoding") or "").lower()
    if "chunked" in te:
        return ("chunked",)
    cl = _hget(hdrs, "Content-Length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ProtocolError("bad Content-Length %r" % cl)
        return ("length", n) if n > 0 else ("none",)
    return ("none",) if is_request else ("close",)


def _body(reader, framing):
    """Yield (raw piece to forward, payload bytes in it) until the body ends."""
    kind = framing[0]
    if kind == "none":
        return
    if kind == "length":
        left = framing[1]
        while left > 0:
            p = reader.piece(left)
            if not len(p):
                raise ProtocolError("connection closed with %d body bytes to come"
                                    % left)
            left -= len(p)
            yield p, len(p)
        return
    if kind == "close":
        while True:
            p = reader.piece(PIECE)
            if not len(p):
                return
            yield p, len(p)
    # chunked: forwarded as it came, framing included
    while True:
        ln = reader.line()
        try:
            size = int(ln.split(b";")[0].strip(), 16)
        except ValueError:
            raise ProtocolError("bad chunk size line %r" % ln)
        yield ln, 0
        if size == 0:
            while True:  # trailers up to the blank line
                t = reader.line()
                yield t, 0
                if t == b"\r\n":
                    return
        left = size
        while left > 0:
            p = reader.piece(left)
            if not len(p):
                raise ProtocolError("connection closed inside a chunk")
            left -= len(p)
            yield p, len(p)
        crlf = reader.line()
        yield crlf, 0


def _rst(sock):
    """Close with a TCP RST instead of a FIN."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _fin(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Drop(Exception):
    """End this client connection (the action already closed it)."""


class FaultProxy:
    """The proxy; a context manager (starts on enter, stops on exit)."""

    def __init__(self, upstream_url, seed=1, rules=None, port=0):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("upstream must be http://HOST:PORT, not %r" % upstream_url)
        self.upstream = (u.hostname, u.port or 80)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._rules = []
        self._left = []  # per rule: faults it may still inject (None: no bound)
        self._counts = {}
        self._requests = []
        self._conns = set()  # _Conn of every open client connection
        self._listener = None
        self._port = port
        self._outage = False
        self._stop = False
        self._accept_ack = threading.Event()
        self._thread = None
        self._rid = 0
        self._accepted = 0
        self._active = 0
        self.set_rules(rules or [])

    # ---- public interface ----
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._port

    @property
    def port(self):
        return self._port

    @property
    def counts(self):
        """{action: faults injected} since start or reset_counts()."""
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self):
        """A list of dicts (method, path, query, op, headers, status,
        bytes_in, bytes_out, action, t) for every request read from a
        client. headers: {lower-cased name: value} as the client sent them,
        except Authorization and X-Amz-Security-Token, whose values are
        "<redacted>"."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def connections(self):
        """Client connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def in_flight(self):
        """Requests read from a client and not finished yet."""
        with self._lock:
            return self._active

    def quiesce(self, idle=1.0, timeout=30):
        """Wait until no request is in flight and none came for `idle` s
        (a client retrying after a backoff is not idle); True if so."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = self._active > 0 or (
                    self._requests and time.time() - self._requests[-1]["t"] < idle)
            if not busy:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def reset_counts(self):
        with self._lock:
            self._counts = {}
            self._requests = []

    def set_rules(self, rules):
        """Replace the rules (see the module doc). Each rule's count starts
        afresh; p.counts and p.requests go on (reset_counts() clears them)."""
        rules = [dict(r) for r in rules]
        for r in rules:
            if r.get("action") not in ACTIONS:
                raise ValueError("unknown action %r (want one of %s)"
                                 % (r.get("action"), ", ".join(ACTIONS)))
            m = dict(r.get("match") or {})
            if "path_re" in m:
                m["_re"] = re.compile(m["path_re"])
            for k in ("method", "op", "query_has"):
                if isinstance(m.get(k), str):
                    m[k] = [m[k]]
            r["match"] = m
        with self._lock:
            self._rules = rules
            self._left = [r.get("count") for r in rules]

    def outage(self, on):
        """on: refuse connects and reset every open connection; off: accept."""
        with self._lock:
            if self._outage == bool(on):
                return
            self._outage = bool(on)
            self._accept_ack.clear()
            conns = list(self._conns) if on else []
        for up in conns:
            for s in (up.client, up.sock):
                if s is None:
                    continue
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
                except OSError:
                    pass
        if not self._accept_ack.wait(10):
            raise RuntimeError("faultproxy: the accept thread did not follow "
                               "outage(%s)" % on)

    def start(self):
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="faultproxy-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        with self._lock:
            self._stop = True
            conns = list(self._conns)
        if self._thread:
            self._thread.join(5)
        for up in conns:
            for s in (up.client, up.sock):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- listener ----
    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self._port))
        s.listen(128)
        s.settimeout(0.1)
        self._port = s.getsockname()[1]
        self._listener = s

    def _accept_loop(self):
        while True:
            with self._lock:
                stop, out = self._stop, self._outage
            if stop:
                if self._listener:
                    self._listener.close()
                    self._listener = None
                return
            if out and self._listener:
                self._listener.close()  # connects are refused from now on
                self._listener = None
                self._accept_ack.set()
            elif not out and not self._listener:
                for _ in range(100):
                    try:
                        self._listen()
                        break
                    except OSError:
                        time.sleep(0.05)
                self._accept_ack.set()
            elif not self._accept_ack.is_set():
                self._accept_ack.set()
            if not self._listener:
                time.sleep(0.05)
                continue
            try:
                c, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                continue
            with self._lock:
                self._accepted += 1
            c.settimeout(None)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(c,), daemon=True,
                             name="faultproxy-conn").start()

    # ---- rules ----
    def _match(self, m, method, op, path, query):
        if "method" in m and method not in m["method"]:
            return False
        if "op" in m and op not in m["op"]:
            return False
        if "_re" in m and not m["_re"].search(urllib.parse.unquote(path)):
            return False
        if "query_has" in m and not all(q in query for q in m["query_has"]):
            return False
        return True

    def _pick(self, method, op, path, query):
        """(index, rule) of the rule that fires, its count claimed; or None."""
        with self._lock:
            for i, r in enumerate(self._rules):
                if not self._match(r["match"], method, op, path, query):
                    continue
                if self._left[i] is not None and self._left[i] <= 0:
                    continue
                p = r.get("prob", 1.0)
                if p < 1.0 and self._rng.random() >= p:
                    continue
                if self._left[i] is not None:
                    self._left[i] -= 1
                return i, r
        return None

    def _unclaim(self, i, rule):
        with self._lock:
            if i < len(self._rules) and self._rules[i] is rule and \
                    self._left[i] is not None:
                self._left[i] += 1

    def _injected(self, rec, action):
        with self._lock:
            self._counts[action] = self._counts.get(action, 0) + 1
            rec["action"] = action

    def _next_rid(self):
        with self._lock:
            self._rid += 1
            return self._rid

    # ---- one client connection ----
    def _serve(self, c):
        up = _Conn(c)
        with self._lock:
            if self._outage or self._stop:
                _rst(c)
                return
            self._conns.add(up)
        reader = _Reader(c)
        try:
            while True:
                head = reader.head()
                if head is None:
                    break
                with self._lock:
                    self._active += 1
                try:
                    keep = self._one(c, reader, head, up)
                finally:
                    with self._lock:
                        self._active -= 1
                if not keep:
                    break
            _fin(c)
        except (_Drop, OSError, ProtocolError):
            _rst(c)
        finally:
            _rst(up.sock)
            with self._lock:
                self._conns.discard(up)

    def _upstream(self, up):
        """The upstream socket and reader, reconnecting when it went stale."""
        s = up.sock
        if s is not None:
            try:
                r, _, _ = select.select([s], [], [], 0)
            except (OSError, ValueError):
                r = [s]
            if r:  # an idle connection that is readable was closed by the peer
                _rst(s)
                s = None
        if s is None:
            s = socket.create_connection(self.upstream, timeout=30)
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.sock = s
            up.reader = _Reader(s)
        return s, up.reader

    def _drop_upstream(self, up):
        _rst(up.sock)
        up.sock = None
        up.reader = None

    def _reply(self, c, code, reason, body, ctype="application/xml",
               close=False, extra=()):
        hdrs = [("Content-Type", ctype), ("Content-Length", str(len(body))),
                ("x-amz-request-id", "faultproxy-%d" % self._next_rid()),
                ("Server", "faultproxy")] + list(extra)
        if close:
            hdrs.append(("Connection", "close"))
        c.sendall(_build_head("HTTP/1.1 %d %s" % (code, reason), hdrs) + body)

    def _one(self, c, reader, head, up):
        """Serve one request; True to keep the client connection."""
        first, hdrs = _parse_head(head)
        try:
            method, target, version = first.split(" ", 2)
        except ValueError:
            raise ProtocolError("bad request line %r" % first)
        path, _, qs = target.partition("?")
        query = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
        op = s3_op(method, path, query, {k.lower(): v for k, v in hdrs})
        rec = {"method": method, "path": path, "query": qs, "op": op,
               "headers": _recorded_headers(hdrs),
               "status": None, "bytes_in": 0, "bytes_out": 0, "action": None,
               "upstream_status": None, "t": time.time()}
        with self._lock:
            self._requests.append(rec)
        picked = self._pick(method, op, path, query)
        idx, rule = picked if picked else (None, None)
        action = rule["action"] if rule else None
        req_framing = _framing(hdrs, True)
        client_close = version == "HTTP/1.0" or \
            (_hget(hdrs, "Connection") or "").lower() == "close"
        expect = (_hget(hdrs, "Expect") or "").lower() == "100-continue"
        fwd_hdrs = _hset(hdrs, "Expect", None)
        if expect and req_framing[0] != "none":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        def drain_request():
            for _, n in _body(reader, req_framing):
                rec["bytes_in"] += n

        # ---- faults answered by the proxy itself ----
        if action in ("503", "500") or (action == "error_200" and
                                        not rule.get("forward", True)):
            drain_request()
            self._injected(rec, action)
            if action == "503":
                code, reason, body = 503, "Slow Down", s3_error_xml(
                    "SlowDown", "Please reduce your request rate.", self._rid)
            elif action == "500":
                code, reason, body = 500, "Internal Server Error", s3_error_xml(
                    "InternalError", "We encountered an internal error. "
                    "Please try again.", self._rid)
            else:
                code, reason, body = 200, "OK", s3_error_xml(
                    "InternalError", "We encountered an internal error. "
                    "Please try again.", self._rid)
            rec["status"] = code
            self._reply(c, code, reason, body, close=client_close)
            return not client_close
        if action == "reset_request":
            self._injected(rec, action)
            total = req_framing[1] if req_framing[0] == "length" else None
            cut = rule.get("after_bytes")
            if cut is None:
                cut = total // 2 if total else 0
            if req_framing[0] != "none":
                for _, n in _body(reader, req_framing):
                    rec["bytes_in"] += n
                    if rec["bytes_in"] >= cut:
                        break
            _rst(c)
            raise _Drop()
        if action == "replace_xml":
            drain_request()
            self._injected(rec, action)
            self._send_nested(c, rec, rule.get("depth", 10_000_000))
            return not client_close
        if action == "delay":
            self._injected(rec, action)
            time.sleep(rule.get("seconds", 2))

        # ---- forward ----
        try:
            s, ur = self._upstream(up)
            s.sendall(_build_head(first, fwd_hdrs))
            for piece, n in _body(reader, req_framing):
                rec["bytes_in"] += n
                s.sendall(piece)
            while True:
                rhead = ur.head()
                if rhead is None:
                    raise ProtocolError("upstream closed without a reply")
                rfirst, rhdrs = _parse_head(rhead)
                status = int(rfirst.split(" ", 2)[1])
                if status >= 200 or status == 101:
                    break
        except (OSError, ProtocolError):
            # the real upstream failed (it is down, or reset us): so do we
            self._drop_upstream(up)
            if action not in (None, "delay"):
                self._unclaim(idx, rule)
            _rst(c)
            raise _Drop()
        rec["upstream_status"] = status
        rframing = _framing(rhdrs, False, method, status)
        up_close = (_hget(rhdrs, "Connection") or "").lower() == "close" or \
            rframing[0] == "close"

        def drain_upstream():
            for _, _n in _body(ur, rframing):
                pass
            if up_close:
                self._drop_upstream(up)

        if action == "lose_reply":
            try:
                drain_upstream()
            except (OSError, ProtocolError):
                self._drop_upstream(up)
            self._injected(rec, action)
            _fin(c)
            raise _Drop()
        if action == "error_200":
            try:
                drain_upstream()
            except (OSError, ProtocolError):
                self._drop_upstream(up)
            self._injected(rec, action)
            rec["status"] = 200
            self._reply(c, 200, "OK", s3_error_xml(
                "InternalError", "We encountered an internal error. "
                "Please try again.", self._rid), close=client_close)
            return not client_close
        if action in _BODY:
            if method != "GET" or not 200 <= status < 300 or \
                    rframing[0] != "length" or rframing[1] < 2:
                self._unclaim(idx, rule)
                action = None
            else:
                self._rewrite_body(c, ur, up, rec, rule, rfirst, rhdrs,
                                   rframing[1], up_close)
                return not client_close
        if action in ("reset_response", "truncate", "stall") and \
                rframing[0] == "none":
            self._unclaim(idx, rule)
            action = None

        # ---- pass the reply through, maybe cutting it ----
        cut = None
        if action in ("reset_response", "truncate", "stall"):
            cut = rule.get("after_bytes")
            if cut is None:
                cut = rframing[1] // 2 if rframing[0] == "length" else PIECE // 2
            self._injected(rec, action)
        rec["status"] = status
        c.sendall(rhead)
        sent = 0
        stalled = False
        try:
            for piece, n in _body(ur, rframing):
                if cut is not None and not stalled and sent + len(piece) >= cut:
                    k = max(0, cut - sent)
                    if k:
                        c.sendall(piece[:k])
                        rec["bytes_out"] += k
                    if action == "reset_response":
                        self._drop_upstream(up)
                        _rst(c)
                        raise _Drop()
                    if action == "truncate":
                        self._drop_upstream(up)
                        _fin(c)
                        raise _Drop()
                    stalled = True  # stall: the rest after a pause
                    time.sleep(rule.get("seconds", 10))
                    piece = piece[k:]
                    n = len(piece)
                    sent += k
                    if not n:
                        continue
                c.sendall(piece)
                sent += len(piece)
                rec["bytes_out"] += n
        except (ProtocolError, OSError):
            self._drop_upstream(up)
            _rst(c)
            raise _Drop()
        if up_close:
            self._drop_upstream(up)
            return False
        return not client_close

    def _rewrite_body(self, c, ur, up, rec, rule, rfirst, rhdrs, length, up_close):
        """short_body / long_body / replace_body / other_etag of a
        Content-Length reply."""
        action = rule["action"]
        status = int(rfirst.split(" ", 2)[1])
        skip = 0
        keep = length
        extra = b""
        hdrs = list(rhdrs)
        first = rfirst
        if action == "short_body":
            keep = rule.get("after_bytes")
            if keep is None or keep >= length:
                keep = length // 2
            hdrs = _hset(hdrs, "Content-Length", str(keep))
        elif action == "long_body":
            extra = bytes(random.Random(rec["t"]).randbytes(rule.get("extra", 4096)))
            hdrs = _hset(hdrs, "Content-Length", str(length + len(extra)))
        elif action == "other_etag":
            hdrs = _hset(hdrs, "ETag", '"0badc0de0badc0de0badc0de0badc0de"')
        else:  # replace_body: the true bytes of a later start of the range
            skip = rule.get("skip", 4096)
            if skip >= length:
                skip = length // 2
            cr = _hget(rhdrs, "Content-Range")
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", cr or "")
            if m:
                a, b, total = int(m.group(1)), int(m.group(2)), m.group(3)
            else:
                a, b, total = 0, length - 1, str(length)
                first = "HTTP/1.1 206 Partial Content"
            hdrs = _hset(hdrs, "Content-Range", "bytes %d-%d/%s" % (a + skip, b, total))
            hdrs = _hset(hdrs, "Content-Length", str(length - skip))
        self._injected(rec, action)
        rec["status"] = status if action != "replace_body" else int(first.split()[1])
        c.sendall(_build_head(first, hdrs))
        pos = 0
        try:
            for piece, n in _body(ur, ("length", length)):
                lo, hi = pos, pos + n
                pos = hi
                if action == "short_body":
                    a, b = lo, min(hi, keep)
                elif action in ("long_body", "other_etag"):
                    a, b = lo, hi
                else:
                    a, b = max(lo, skip), hi
                if b > a:
                    c.sendall(piece[a - lo:b - lo])
                    rec["bytes_out"] += b - a
            if extra:
                c.sendall(extra)
                rec["bytes_out"] += len(extra)
        except (ProtocolError, OSError):
            self._drop_upstream(up)
            _rst(c)
            raise _Drop()
        if up_close:
            self._drop_upstream(up)

    def _send_nested(self, c, rec, depth):
        pre = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
               b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
        post = b"</ListBucketResult>"
        total = len(pre) + 7 * depth + len(post)
        rec["status"] = 200
        c.sendall(_build_head("HTTP/1.1 200 OK", [
            ("Content-Type", "application/xml"), ("Content-Length", str(total)),
            ("x-amz-request-id", "faultproxy-%d" % self._next_rid()),
            ("Server", "faultproxy")]) + pre)
        step = PIECE // 4
        for tag in (b"<a>", b"</a>"):
            block = tag * step
            left = depth
            while left > 0:
                k = min(step, left)
                c.sendall(block if k == step else tag * k)
                left -= k
        c.sendall(post)
        rec["bytes_out"] = total


class _Conn:
    """One client connection and the upstream connection it uses."""

    def __init__(self, client):
        self.client = client
        self.sock = None  # upstream
        self.reader = None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of radosgw")
    ap.add_argument("--rules", default="[]", help="JSON list of rules, or @FILE")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-stdin", action="store_true",
                    help="read 'rules JSON', 'outage on|off', 'counts', 'reset' lines")
    a = ap.parse_args(argv)
    text = a.rules
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    p = FaultProxy(a.upstream, seed=a.seed, rules=json.loads(text), port=a.port)
    p.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("PORT %d" % p.port, flush=True)
    if a.control_stdin:
        def control():
            for line in sys.stdin:
                cmd, _, arg = line.strip().partition(" ")
                try:
                    if cmd == "rules":
                        p.set_rules(json.loads(arg))
                        out = {"ok": True}
                    elif cmd == "outage":
                        p.outage(arg == "on")
                        out = {"ok": True}
                    elif cmd == "counts":
                        out = {"counts": p.counts, "requests": len(p.requests)}
                    elif cmd == "reset":
                        p.reset_counts()
                        out = {"ok": True}
                    else:
                        out = {"error": "unknown command %r" % cmd}
                except Exception as e:  # report, keep serving
                    out = {"error": str(e)}
                print(json.dumps(out), flush=True)
            done.set()
        threading.Thread(target=control, daemon=True).start()
    while not done.wait(0.5):
        pass
    p.stop()
    print(json.dumps({"counts": p.counts, "requests": len(p.requests)}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
