#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""creds_double: a loopback HTTP test double for the credential sources that
have no offline server: EC2 IMDSv2, the ECS/EKS container credentials
endpoint, and STS (AssumeRole, AssumeRoleWithWebIdentity).

It behaves like the real services where the client can tell the difference:
IMDSv2 needs a session token from PUT /latest/api/token (with a TTL header);
the container endpoint needs the Authorization token; STS AssumeRole must be
SigV4-signed (service sts) by a key it knows (a --caller key or one it issued
itself, with its session token signed too), and AssumeRoleWithWebIdentity
must carry the right token. Every credential it hands out is new and expires
--expiry seconds later. Secrets carry recognisable prefixes (SECRET-, TOKEN-)
so tests can grep logs for them.

Usage: creds_double.py [--expiry S] [--region R] [--role NAME]
                       [--caller AKID:SECRET] [--container-token T]
                       [--web-token-file F] [--container-creds AKID:SECRET]
                       [--rgw-admin CMD --rgw-uid UID]
--container-creds: the container endpoint hands out these long-term keys
(with a session token, as CodeBuild's always has one; radosgw and the
CloudFormation double do not check it) instead of new ones, for tests whose
other servers know only those keys.
Prints "PORT <n>" on stdout when listening on 127.0.0.1:<n>.
Control (tests): GET /_double/stats -> JSON counters;
GET /_double/set?expiry=S&fail=0|1&revoke=1&hang=0|1 changes behaviour
(hang=1: IMDS and container credential requests are accepted and get no
answer until hang=0); GET /_double/issued -> JSON list of every credential
handed out (akid, secret, token, expiration, removed: when it was removed
from radosgw), for tests that grep logs for them.

With --rgw-admin "radosgw-admin -c CONF" --rgw-uid UID the IMDS and
container credentials are real radosgw keys: each one handed out is created
as a new S3 key of user UID (radosgw-admin key create), and a reaper removes
it from radosgw (key rm) once its Expiration has passed, so a request signed
with an expired key fails there as it would on AWS. radosgw ignores the
session token that comes with it. Keys still present at exit are removed.
"""
import argparse
import datetime
import hashlib
import hmac
import json
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.expiry = args.expiry
        self.region = args.region
        self.role = args.role
        self.fail = False
        self.hang = False
        # radosgw-admin edits a user by read-modify-write: one call at a time,
        # or a key create and a key rm undo each other; no admin socket (two
        # at once would collide on its path)
        self.rgw_admin = (shlex.split(args.rgw_admin) + ["--admin-socket", ""]
                          if args.rgw_admin else None)
        self.rgw_lock = threading.Lock()
        self.rgw_uid = args.rgw_uid
        self.issued = []  # dicts: akid, secret, token, expiration (epoch), removed
        self.container_token = args.container_token
        self.web_token_file = args.web_token_file
        self.container_creds = args.container_creds.split(":", 1) if args.container_creds else None
        self.keys = {}  # access key id -> (secret, session token or None)
        self.imds_tokens = set()
        self.counter = 0
        self.stats = {
            "imds_requests": 0,  # every request to /latest/..., answered or not
            "imds_token_put": 0,
            "imds_role_list": 0,
            "imds_creds": 0,
            "imds_region": 0,
            "imds_unauthorized": 0,
            "container": 0,
            "container_unauthorized": 0,
            "assume_role": 0,
            "assume_role_web_identity": 0,
            "sts_rejected": 0,
            "issued": 0,
            "hung": 0,  # credential requests held by hang=1
            "rgw_keys_created": 0,
            "rgw_keys_removed": 0,
            "rgw_admin_failed": 0,
        }
        for c in args.caller or []:
            akid, secret = c.split(":", 1)
            self.keys[akid] = (secret, None)

    def issue(self, kind, in_rgw=False):
        """A fresh temporary credential set, remembered so it can sign later.

        in_rgw: also create it as a radosgw key (when --rgw-admin is given).
        """
        with self.lock:
            self.counter += 1
            n = self.counter
            self.stats["issued"] += 1
            akid = "ASIA%s%04d" % (kind.upper()[:6], n)
            if self.rgw_admin:  # unique across runs: radosgw keeps keys
                akid += secrets.token_hex(4).upper()
            secret = "SECRET-%s-%04d-%s" % (kind, n, secrets.token_hex(8))
            token = "TOKEN-%s-%04d-%s" % (kind, n, secrets.token_hex(16))
            self.keys[akid] = (secret, token)
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            exp = now + datetime.timedelta(seconds=self.expiry)
        if in_rgw and self.rgw_admin:
            if not self.rgw("key", "create", "--uid=" + self.rgw_uid, "--key-type=s3",
                            "--access-key=" + akid, "--secret-key=" + secret):
                return None
            with self.lock:
                self.stats["rgw_keys_created"] += 1
        with self.lock:
            self.issued.append({"akid": akid, "secret": secret, "token": token,
                                "expiration": exp.timestamp(), "issued": time.time(),
                                "rgw": bool(in_rgw and self.rgw_admin),
                                "removed": None})
        return akid, secret, token, exp.strftime("%Y-%m-%dT%H:%M:%SZ")

    def rgw(self, *args):
        with self.rgw_lock:
            r = subprocess.run(self.rgw_admin + list(args), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        if r.returncode:
            with self.lock:
                self.stats["rgw_admin_failed"] += 1
            print("creds_double: radosgw-admin %s failed: %s" % (" ".join(args[:2]),
                                                                r.stderr.strip()),
                  file=sys.stderr, flush=True)
        return r.returncode == 0

    def reap(self, everything=False):
        """Remove from radosgw the keys past their expiration (or all)."""
        now = time.time()
        with self.lock:
            due = [c for c in self.issued if c["rgw"] and c["removed"] is None and
                   (everything or c["expiration"] <= now)]
        for c in due:
            if self.rgw("key", "rm", "--uid=" + self.rgw_uid, "--key-type=s3",
                        "--access-key=" + c["akid"]):
                with self.lock:
                    c["removed"] = time.time()
                    self.stats["rgw_keys_removed"] += 1

    def reaper(self):
        while True:
            time.sleep(0.2)
            self.reap()

    def wait_hang(self):
        """While hang is set, hold a credential request (no answer)."""
        counted = False
        while True:
            with self.lock:
                if not self.hang:
                    return
                if not counted:
                    self.stats["hung"] += 1
                    counted = True
            time.sleep(0.1)

    def count(self, name):
        with self.lock:
            self.stats[name] += 1


def sigv4_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def canonical_query(q):
    pairs = []
    for part in q.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(k), False),
                      uri_encode(urllib.parse.unquote(v), False)))
    pairs.sort()
    return "&".join("%s=%s" % p for p in pairs)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this, Nagle plus the
    # client's delayed ACK add 40 ms to every answer
    disable_nagle_algorithm = True
    server_version = "creds-double/1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    @property
    def st(self):
        return self.server.state

    def reply(self, code, body, ctype="text/plain", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "req-" + secrets.token_hex(6))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a held request timed out): nothing to say

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- IMDSv2 ----
    def imds_authorized(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with self.st.lock:
            ok = tok in self.st.imds_tokens
        if not ok:
            self.st.count("imds_unauthorized")
            self.reply(401, "")
        return ok

    def creds_json(self, kind):
        got = self.st.issue(kind, in_rgw=True)
        if got is None:
            return None
        akid, secret, token, exp = got
        return json.dumps({
            "Code": "Success",
            "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": akid,
            "SecretAccessKey": secret,
            "Token": token,
            "Expiration": exp,
        })

    def fixed_creds_json(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        return json.dumps({
            "AccessKeyId": self.st.container_creds[0],
            "SecretAccessKey": self.st.container_creds[1],
            "Token": "TOKEN-container-fixed-" + secrets.token_hex(8),
            "Expiration": (now + datetime.timedelta(seconds=self.st.expiry)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
        })

    def do_PUT(self):
        self.body()
        if self.path.startswith("/latest/"):
            self.st.count("imds_requests")
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "missing or bad TTL header")
            if self.st.fail:
                return self.reply(503, "")
            tok = "imds-session-" + secrets.token_hex(12)
            with self.st.lock:
                self.st.imds_tokens.add(tok)
            self.st.count("imds_token_put")
            return self.reply(200, tok, extra={"X-aws-ec2-metadata-token-ttl-seconds": ttl})
        self.reply(404, "")

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/_double/stats":
            with self.st.lock:
                return self.reply(200, json.dumps(self.st.stats), "application/json")
        if path == "/_double/set":
            q = urllib.parse.parse_qs(query)
            with self.st.lock:
                if "expiry" in q:
                    self.st.expiry = int(q["expiry"][0])
                if "fail" in q:
                    self.st.fail = q["fail"][0] == "1"
                if "revoke" in q:  # forget every IMDS session token issued so far
                    self.st.imds_tokens.clear()
                if "hang" in q:
                    self.st.hang = q["hang"][0] == "1"
            return self.reply(200, "ok")
        if path == "/_double/issued":
            with self.st.lock:
                return self.reply(200, json.dumps(self.st.issued), "application/json")
        if path.startswith("/latest/"):
            self.st.count("imds_requests")
            if not self.imds_authorized():
                return
            base = "/latest/meta-data/iam/security-credentials/"
            if path == base:
                self.st.count("imds_role_list")
                return self.reply(200, self.st.role)
            if path == base + self.st.role:
                self.st.wait_hang()
                if self.st.fail:
                    return self.reply(503, "")
                self.st.count("imds_creds")
                body = self.creds_json("imds")
                if body is None:
                    return self.reply(500, "")
                return self.reply(200, body, "application/json")
            if path == "/latest/meta-data/placement/region":
                self.st.count("imds_region")
                return self.reply(200, self.st.region)
            return self.reply(404, "")
        if path.startswith("/v2/credentials/") or path.startswith("/container/"):
            want = self.st.container_token
            if want is not None and self.headers.get("Authorization") != want:
                self.st.count("container_unauthorized")
                return self.reply(401, json.dumps({"message": "bad token"}),
                                  "application/json")
            self.st.wait_hang()
            if self.st.fail:
                return self.reply(503, "")
            self.st.count("container")
            if self.st.container_creds:
                return self.reply(200, self.fixed_creds_json(), "application/json")
            body = self.creds_json("container")
            if body is None:
                return self.reply(500, json.dumps({"message": "radosgw-admin failed"}),
                                  "application/json")
            return self.reply(200, body, "application/json")
        self.reply(404, "")

    # ---- STS ----
    def sts_error(self, code, http, kind, msg):
        self.st.count("sts_rejected")
        xml = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>'
               '<Message>%s</Message></Error><RequestId>err-%s</RequestId>'
               '</ErrorResponse>' % (STS_NS, kind, code, msg, secrets.token_hex(6)))
        self.reply(http, xml, "text/xml")

    def check_signature(self, body):
        """Verify the SigV4 Authorization header; returns an error text or None."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "MissingAuthenticationToken", "Request is missing Authentication Token"
        fields = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
        try:
            akid, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            sig = fields["Signature"]
        except (KeyError, ValueError):
            return "IncompleteSignature", "malformed Authorization header"
        if service != "sts" or term != "aws4_request":
            return "SignatureDoesNotMatch", "credential scope must name service sts"
        if region != self.st.region:
            return "SignatureDoesNotMatch", "credential scope region %s, expected %s" % (
                region, self.st.region)
        with self.st.lock:
            known = self.st.keys.get(akid)
        if not known:
            return "InvalidClientTokenId", "The security token included in the request is invalid"
        secret, token = known
        if token is not None:
            if self.headers.get("X-Amz-Security-Token") != token:
                return "InvalidClientTokenId", "session token missing or wrong"
            if "x-amz-security-token" not in signed:
                return "SignatureDoesNotMatch", "session token not signed"
        amz_date = self.headers.get("X-Amz-Date", "")
        if amz_date[:8] != date:
            return "SignatureDoesNotMatch", "X-Amz-Date does not match the scope date"
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return "IncompleteSignature", "bad X-Amz-Date"
        if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900:
            return "SignatureDoesNotMatch", "Signature expired (clock skew)"
        for must in ("host", "x-amz-date"):
            if must not in signed:
                return "SignatureDoesNotMatch", "%s must be signed" % must
        path, _, query = self.path.partition("?")
        hdr_lines = ""
        for h in signed:
            vals = self.headers.get_all(h) or []
            v = ",".join(" ".join(x.split()) for x in vals)
            hdr_lines += "%s:%s\n" % (h, v)
        creq = "\n".join([self.command, uri_encode(path, True), canonical_query(query),
                          hdr_lines, ";".join(signed), hashlib.sha256(body).hexdigest()])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "%s/%s/%s/aws4_request" % (
            date, region, service), hashlib.sha256(creq.encode()).hexdigest()])
        want = hmac.new(sigv4_key(secret, date, region, service), sts.encode(),
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            return "SignatureDoesNotMatch", ("The request signature we calculated does not "
                                             "match the signature you provided")
        return None

    def do_POST(self):
        body = self.body()
        if self.path.partition("?")[0] != "/":
            return self.reply(404, "")
        if not self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"):
            return self.sts_error("InvalidParameterValue", 400, "Sender",
                                  "expected a form-encoded body")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(),
                                                          keep_blank_values=True).items()}
        action = form.get("Action")
        if form.get("Version") != "2011-06-15":
            return self.sts_error("InvalidAction", 400, "Sender", "bad or missing Version")
        for p in ("RoleArn", "RoleSessionName"):
            if not form.get(p):
                return self.sts_error("MissingParameter", 400, "Sender",
                                      "%s is required" % p)
        if self.st.fail:
            return self.sts_error("ServiceUnavailable", 503, "Receiver", "try later")
        if action == "AssumeRole":
            err = self.check_signature(body)
            if err:
                return self.sts_error(err[0], 403, "Sender", err[1])
            self.st.count("assume_role")
            kind = "role"
        elif action == "AssumeRoleWithWebIdentity":
            if "Authorization" in self.headers:
                return self.sts_error("InvalidParameterValue", 400, "Sender",
                                      "AssumeRoleWithWebIdentity is unsigned")
            want = None
            if self.st.web_token_file:
                with open(self.st.web_token_file) as f:
                    want = f.read().strip()
            if not want or form.get("WebIdentityToken") != want:
                return self.sts_error("InvalidIdentityToken", 400, "Sender",
                                      "The web identity token is not valid")
            self.st.count("assume_role_web_identity")
            kind = "web"
        else:
            return self.sts_error("InvalidAction", 400, "Sender", "unknown action")
        akid, secret, token, exp = self.st.issue(kind)
        xml = ('<{a}Response xmlns="{ns}"><{a}Result><Credentials>'
               '<AccessKeyId>{k}</AccessKeyId><SecretAccessKey>{s}</SecretAccessKey>'
               '<SessionToken>{t}</SessionToken><Expiration>{e}</Expiration>'
               '</Credentials><AssumedRoleUser><Arn>{arn}/{sn}</Arn>'
               '<AssumedRoleId>AROA:{sn}</AssumedRoleId></AssumedRoleUser>'
               '</{a}Result><ResponseMetadata><RequestId>ok-{rid}</RequestId>'
               '</ResponseMetadata></{a}Response>').format(
                   a=action, ns=STS_NS, k=akid, s=secret, t=token, e=exp,
                   arn=form["RoleArn"], sn=form["RoleSessionName"],
                   rid=secrets.token_hex(6))
        self.reply(200, xml, "text/xml")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expiry", type=int, default=3600)
    ap.add_argument("--region", default="eu-north-1")
    ap.add_argument("--role", default="hpcops-node-role")
    ap.add_argument("--caller", action="append", help="AKID:SECRET allowed to AssumeRole")
    ap.add_argument("--container-token")
    ap.add_argument("--web-token-file")
    ap.add_argument("--container-creds", help="AKID:SECRET the container endpoint hands out")
    ap.add_argument("--rgw-admin", help="radosgw-admin command line: hand out real keys")
    ap.add_argument("--rgw-uid", help="the radosgw user the keys are created for")
    args = ap.parse_args()
    if bool(args.rgw_admin) != bool(args.rgw_uid):
        ap.error("--rgw-admin and --rgw-uid go together")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    if args.rgw_admin:
        threading.Thread(target=srv.state.reaper, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    if args.rgw_admin:
        srv.state.reap(everything=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
