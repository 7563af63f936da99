#!/usr/bin/env python3
"""faultproxy.py: a fault-injecting HTTP/1.1 proxy for DynamoDB tests.

It sits between a client (dynfs, the AWS SDK, the AWS CLI) and DynamoDB
Local on 127.0.0.1, forwards each request (DynamoDB's JSON 1.0 POSTs with
an x-amz-target header, or anything else) and, per request, under a seeded
random generator, may inject one fault instead:

  throttle      HTTP 400 ProvisionedThroughputExceededException
  throttling    HTTP 400 ThrottlingException
  error500      HTTP 500 InternalServerError
  reset_before  the connection is reset (RST) before the request is
                forwarded: DynamoDB never sees it
  reset_after   the request is forwarded and applied, then the client's
                connection is reset instead of getting the answer (the
                case that makes retried writes apply twice)
  delay         an added delay of delay_ms before forwarding (drawn
                independently of the faults above)
  down          every request is reset; nothing is forwarded

Usage:

  faultproxy.py --upstream http://127.0.0.1:PORT --port-file FILE
                [--seed N] [--throttle R] [--throttling R] [--error500 R]
                [--reset-before R] [--reset-after R] [--delay R]
                [--delay-ms MS] [--down] [--only OP[,OP...]]
                [--log FILE] [--pid-file FILE]

It listens on 127.0.0.1 on a free port (or --port), writes the port to
--port-file once it accepts connections (atomically, by rename), and runs
until SIGTERM or SIGINT.  Rates are probabilities per request in [0, 1];
the fault rates together must not exceed 1.  --only restricts faults to
the named operations (the part of x-amz-target after the dot, e.g.
BatchWriteItem); other requests always pass.

Control endpoint, on the same port (recognised by the path, never
forwarded):

  GET  /__fault            the current settings (JSON)
  POST /__fault            change settings: a JSON object with any of
                           throttle, throttling, error500, reset_before,
                           reset_after, delay, delay_ms (numbers), down
                           (bool), only (list of operation names, [] for
                           all), seed (reseeds the generator), next (a list
                           of fault kinds injected, in order, into the next
                           matching requests before the rates apply),
                           clear (true: all rates 0, down off, only and
                           next empty, before the other keys apply)
  GET  /__fault/down       down mode on      GET /__fault/up   down mode off
  GET  /__fault/clear      rates 0, down off, only and next empty
  GET  /__fault/stats      counters (JSON, below)
  POST /__fault/stats/reset   counters to 0 (GET works too)

Stats: {"requests": N, "forwarded": N, "passed": N, "upstream_errors": N,
"control": N, "injected": {KIND: N, ...}, "by_target": {TARGET:
{"requests": N, "forwarded": N, "passed": N, KIND: N, ...}}} where
TARGET is the x-amz-target header ("-" when absent); "forwarded" counts
requests DynamoDB received (reset_after and delayed ones included),
"passed" those whose answer reached the client unchanged.

Python 3 standard library only.
"""

import argparse
import http.client
import http.server
import json
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import zlib

FAULT_KINDS = ("throttle", "throttling", "error500", "reset_before", "reset_after")
ALL_KINDS = FAULT_KINDS + ("delay", "down")
RATE_KEYS = FAULT_KINDS + ("delay",)

# Headers that belong to one connection and are never forwarded.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding",
    "upgrade", "expect", "content-length",
}


class State:
    """Settings, the random generator and the counters, under one lock."""

    def __init__(self, seed):
        self.lock = threading.Lock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.rates = {k: 0.0 for k in RATE_KEYS}
        self.delay_ms = 200
        self.down = False
        self.only = []
        self.next = []
        self.log = None
        self.reset_stats()

    def reset_stats(self):
        self.stats = {
            "requests": 0, "forwarded": 0, "passed": 0,
            "upstream_errors": 0, "control": 0,
            "injected": {k: 0 for k in ALL_KINDS},
            "by_target": {},
        }

    def settings(self):
        return {
            **{k: self.rates[k] for k in RATE_KEYS},
            "delay_ms": self.delay_ms, "down": self.down,
            "only": list(self.only), "next": list(self.next), "seed": self.seed,
        }

    def update(self, cfg):
        """Apply a settings object; raises ValueError on a bad one (and then
        changes nothing)."""
        if not isinstance(cfg, dict):
            raise ValueError("settings must be a JSON object")
        known = set(RATE_KEYS) | {"delay_ms", "down", "only", "seed", "next", "clear",
                                  "error", "reset"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError("unknown setting(s): " + ", ".join(unknown))
        cfg = dict(cfg)
        # Short aliases.
        if "error" in cfg:
            cfg.setdefault("error500", cfg.pop("error"))
        if "reset" in cfg:
            cfg.setdefault("reset_before", cfg.pop("reset"))
        rates = dict(self.rates)
        down, only, nxt = self.down, list(self.only), list(self.next)
        delay_ms, seed = self.delay_ms, None
        if cfg.get("clear"):
            rates = {k: 0.0 for k in RATE_KEYS}
            down, nxt, only = False, [], []
        for k in RATE_KEYS:
            if k in cfg:
                v = cfg[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                    raise ValueError(f"{k} must be a number in [0, 1]")
                rates[k] = float(v)
        if sum(rates[k] for k in FAULT_KINDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        if "delay_ms" in cfg:
            v = cfg["delay_ms"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 600000:
                raise ValueError("delay_ms must be a number in [0, 600000]")
            delay_ms = v
        if "down" in cfg:
            if not isinstance(cfg["down"], bool):
                raise ValueError("down must be true or false")
            down = cfg["down"]
        if "only" in cfg:
            v = cfg["only"]
            if isinstance(v, str):
                v = [x for x in v.split(",") if x]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError("only must be a list of operation names")
            only = v
        if "next" in cfg:
            v = cfg["next"]
            if not isinstance(v, list) or not all(x in FAULT_KINDS + ("pass", "delay") for x in v):
                raise ValueError("next must be a list of: " + ", ".join(FAULT_KINDS + ("pass", "delay")))
            nxt = v
        if "seed" in cfg:
            if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int):
                raise ValueError("seed must be an integer")
            seed = cfg["seed"]
        with self.lock:
            self.rates, self.down, self.only, self.next = rates, down, only, nxt
            self.delay_ms = delay_ms
            if seed is not None:
                self.seed = seed
                self.rng = random.Random(seed)

    def decide(self, target):
        """The fault for one request: (kind or None, delay seconds), and
        count the request."""
        op = target.rsplit(".", 1)[-1] if target != "-" else "-"
        with self.lock:
            st = self.stats
            st["requests"] += 1
            per = st["by_target"].setdefault(target, {"requests": 0, "forwarded": 0, "passed": 0})
            per["requests"] += 1
            if self.down:
                return "down", 0.0
            if self.only and op not in self.only and target not in self.only:
                return None, 0.0
            if self.next:
                kind = self.next.pop(0)
                if kind == "pass":
                    return None, 0.0
                if kind == "delay":
                    return None, self.delay_ms / 1000.0
                return kind, 0.0
            # Two draws for every request, whatever the rates, so that a
            # seed gives the same sequence of decisions.
            r = self.rng.random()
            rd = self.rng.random()
            kind = None
            acc = 0.0
            for k in FAULT_KINDS:
                acc += self.rates[k]
                if r < acc:
                    kind = k
                    break
            delay = self.delay_ms / 1000.0 if rd < self.rates["delay"] else 0.0
            return kind, delay

    def count(self, target, *names):
        with self.lock:
            per = self.stats["by_target"].setdefault(
                target, {"requests": 0, "forwarded": 0, "passed": 0})
            for n in names:
                if n in self.stats["injected"]:
                    self.stats["injected"][n] += 1
                else:
                    self.stats[n] += 1
                per[n] = per.get(n, 0) + 1

    def count_control(self):
        with self.lock:
            self.stats["control"] += 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    def logline(self, *fields):
        if self.log is None:
            return
        line = "%.3f %s\n" % (time.time(), " ".join(str(f) for f in fields))
        with self.lock:
            try:
                self.log.write(line)
                self.log.flush()
            except OSError:
                pass


class ResetConnection(Exception):
    """Raised to end the handler after the client's socket was reset."""


def error_body(kind):
    if kind == "throttle":
        return 400, {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was "
                       "exceeded. Consider increasing your provisioning level with the "
                       "UpdateTable API. (injected by faultproxy)",
        }
    if kind == "throttling":
        return 400, {
            "__type": "com.amazon.coral.availability#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput. (injected by faultproxy)",
        }
    return 500, {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error (injected by faultproxy)",
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    sys_version = ""
    # Idle client connections are closed after this many seconds.
    timeout = 300

    def setup(self):
        super().setup()
        self.upstream = None
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def log_message(self, fmt, *args):  # quiet: --log has one line a request
        pass

    # --- plumbing ---------------------------------------------------------
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ConnectionError("client closed inside the body")
        return data

    def reset(self):
        """Reset the client's connection (RST, not FIN) and end the handler."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        raise ResetConnection()

    def reply(self, status, body, ctype="application/x-amz-json-1.0", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "faultproxy-%016x" % random.getrandbits(64))
        self.send_header("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))
        for k, v in headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def forward(self, body):
        """Send the request upstream (keep-alive, one upstream connection per
        client connection) and return (status, reason, headers, body)."""
        up = self.server.upstream
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        for attempt in (0, 1):
            fresh = self.upstream is None
            if fresh:
                self.upstream = http.client.HTTPConnection(
                    up.hostname, up.port or 80, timeout=self.server.upstream_timeout)
            conn = self.upstream
            try:
                conn.putrequest(self.command, self.path, skip_host=True,
                                skip_accept_encoding=True)
                has_host = False
                for k, v in headers:
                    if k.lower() == "host":
                        has_host = True
                    conn.putheader(k, v)
                if not has_host:
                    conn.putheader("Host", up.netloc)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                rheaders = [(k, v) for k, v in resp.getheaders()
                            if k.lower() not in HOP_BY_HOP]
                if resp.will_close:
                    conn.close()
                    self.upstream = None
                return resp.status, resp.reason, rheaders, data
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                conn.close()
                self.upstream = None
                # A kept-alive upstream connection that the server had
                # closed: try once more on a new one.
                if fresh or attempt == 1:
                    raise e
            except Exception:
                conn.close()
                self.upstream = None
                raise
        raise ConnectionError("unreachable")

    # --- control endpoint ---------------------------------------------------
    def control(self, body):
        st = self.server.state
        st.count_control()
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        try:
            if path == "/__fault":
                if self.command == "POST":
                    try:
                        cfg = json.loads(body.decode() or "{}")
                    except ValueError as e:
                        return self.reply(400, {"error": "not JSON: %s" % e}, "application/json")
                    st.update(cfg)
                return self.reply(200, st.settings(), "application/json")
            if path in ("/__fault/down", "/__fault/up"):
                st.update({"down": path.endswith("down")})
                return self.reply(200, st.settings(), "application/json")
            if path == "/__fault/clear":
                st.update({"clear": True})
                return self.reply(200, st.settings(), "application/json")
            if path == "/__fault/stats":
                return self.reply(200, st.snapshot(), "application/json")
            if path == "/__fault/stats/reset":
                with st.lock:
                    st.reset_stats()
                return self.reply(200, st.snapshot(), "application/json")
            if path == "/__fault/ping":
                return self.reply(200, {"ok": True}, "application/json")
        except ValueError as e:
            return self.reply(400, {"error": str(e)}, "application/json")
        return self.reply(404, {"error": "unknown control path " + path}, "application/json")

    # --- one request ----------------------------------------------------------
    def handle_any(self):
        st = self.server.state
        try:
            body = self.read_body()
        except (ValueError, ConnectionError, OSError):
            self.close_connection = True
            return
        if self.path.startswith("/__fault"):
            self.control(body)
            return
        target = self.headers.get("X-Amz-Target") or "-"
        kind, delay = st.decide(target)
        t0 = time.monotonic()
        if kind == "down" or kind == "reset_before":
            st.count(target, kind)
            st.logline(target, kind)
            self.reset()
        if delay:
            st.count(target, "delay")
            time.sleep(delay)
        if kind in ("throttle", "throttling", "error500"):
            st.count(target, kind)
            st.logline(target, kind)
            status, obj = error_body(kind)
            self.reply(status, obj)
            return
        try:
            status, reason, rheaders, data = self.forward(body)
        except Exception as e:  # upstream unreachable or broken
            st.count(target, "upstream_errors")
            st.logline(target, "upstream_error", type(e).__name__, e)
            self.close_connection = True
            self.reply(502, {"__type": "faultproxy#UpstreamError",
                             "message": "faultproxy: upstream failed: %s: %s"
                                        % (type(e).__name__, e)}, "application/json")
            return
        if kind == "reset_after":
            st.count(target, "forwarded", "reset_after")
            st.logline(target, "reset_after", status)
            self.reset()
        st.count(target, "forwarded", "passed")
        st.logline(target, "pass", status, "%.1fms" % ((time.monotonic() - t0) * 1000))
        self.send_response_only(status, reason)
        for k, v in rheaders:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except ResetConnection:
            self.close_connection = True
        except (ConnectionError, BrokenPipeError, socket.timeout, OSError):
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that went away is not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ResetConnection, OSError)):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request):
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.close_request(request)


def rate(text):
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("a rate is in [0, 1]")
    return v


def main():
    ap = argparse.ArgumentParser(description="fault-injecting HTTP/1.1 proxy for DynamoDB tests")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of DynamoDB (Local)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--pid-file", help="write the process id here")
    ap.add_argument("--seed", type=int, default=1)
    for k in FAULT_KINDS + ("delay",):
        ap.add_argument("--" + k.replace("_", "-"), type=rate, default=0.0, dest=k,
                        help="rate of %s faults" % k)
    ap.add_argument("--delay-ms", type=float, default=200.0)
    ap.add_argument("--down", action="store_true", help="start in down mode")
    ap.add_argument("--only", default="", help="inject only into these operations (comma list)")
    ap.add_argument("--upstream-timeout", type=float, default=120.0)
    ap.add_argument("--log", help="append one line per request to this file")
    a = ap.parse_args()

    up = urllib.parse.urlsplit(a.upstream)
    if up.scheme != "http" or not up.hostname:
        ap.error("--upstream must be an http://HOST:PORT URL")

    state = State(a.seed)
    try:
        state.update({**{k: getattr(a, k) for k in RATE_KEYS}, "delay_ms": a.delay_ms,
                      "down": a.down, "only": a.only})
    except ValueError as e:
        ap.error(str(e))
    if a.log:
        state.log = open(a.log, "a", encoding="utf-8")

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = state
    srv.upstream = up
    srv.upstream_timeout = a.upstream_timeout
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if a.pid_file:
        with open(a.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(a.pid_file + ".tmp", a.pid_file)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(a.port_file + ".tmp", a.port_file)
    sys.stderr.write("faultproxy: listening on 127.0.0.1:%d, upstream %s\n" % (port, a.upstream))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
