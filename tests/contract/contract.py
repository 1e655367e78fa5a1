"""Common machinery of the contract servers (tests/contract/*.py).

A contract server stands in for a cloud service in the tests: it speaks the
service's published API over TLS on 127.0.0.1 and checks what the real
service checks.  This module holds what every such server shares:

* the TLS listener (a thread per connection, HTTP/1.1 keep-alive) that can
  be taken down and brought back on the same port, or made to hang;
* a plain-HTTP control listener for the test: counts of calls per
  operation, injected throttling and 5xx answers, and service commands;
* a log line per request (operation, status, latency in ms) for the
  latency figures, and a file of every secret the server issued, so that
  tests can grep their output for them.

Run with Debian's /usr/bin/python3; stdlib only here.
"""

import argparse
import http.server
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
import traceback


class Reply:
    """What a handler answers: status, headers, body (bytes or JSON)."""

    def __init__(self, status=200, body=b"", headers=None, ctype=None):
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            ctype = ctype or "application/json"
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        if ctype:
            self.headers.setdefault("Content-Type", ctype)


class Request:
    def __init__(self, method, path, headers, body, server, kind="main"):
        self.kind = kind  # which listener: "main" (TLS) or a plain extra one
        self.method = method
        self.path = path  # with the query
        self.headers = headers  # email.message.Message (case-insensitive)
        self.body = body
        self.server = server

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def bearer(self):
        a = self.headers.get("Authorization") or ""
        return a[7:] if a.startswith("Bearer ") else None


class Service:
    """One service: subclasses implement handle() and the fault replies."""

    name = "service"

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.counts = {}
        self.throttle = 0
        self.fail = 0
        self.fail_status = 503
        self.mode = "up"
        self.last = {}  # the last request of each operation, for the tests
        self.log = open(os.path.join(args.dir, "requests.log"), "a", buffering=1)
        self.secret_file = open(os.path.join(args.dir, "secrets.txt"), "a", buffering=1)

    # -- for subclasses
    def handle(self, req):
        raise NotImplementedError

    def throttle_reply(self):
        return Reply(429, {"error": "throttled"})

    def fail_reply(self, status):
        return Reply(status, {"error": "injected failure"})

    def control(self, cmd, args):
        """Service-specific control commands; return a JSON-able result."""
        if cmd == "last":
            return self.last
        raise KeyError(cmd)

    def faults_apply(self, op):
        """Whether injected faults hit this operation (not token calls, say)."""
        return True

    # -- helpers
    def count(self, op):
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1

    def issue(self, nbytes=24, prefix=""):
        """A new random secret, recorded for the tests' output checks."""
        s = prefix + secrets.token_urlsafe(nbytes)
        self.secret_file.write(s + "\n")
        return s

    def record_secret(self, s):
        self.secret_file.write(s + "\n")

    def serve(self, op, call, errors, to_reply):
        """Count op, answer with an injected fault if one is due, else
        call(); the service's own errors (of the classes errors) become
        replies through to_reply.  Returns (op, reply) for the log."""
        self.count(op)
        fault = self.injected(op)
        if fault:
            return op, fault
        try:
            return op, call()
        except errors as e:
            return op, to_reply(e)

    def injected(self, op):
        with self.lock:
            if not self.faults_apply(op):
                return None
            if self.throttle > 0:
                self.throttle -= 1
                return self.throttle_reply()
            if self.fail > 0:
                self.fail -= 1
                return self.fail_reply(self.fail_status)
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "contract"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(n) if n else b""

    def _serve(self):
        svc = self.server.service
        t0 = time.monotonic()
        body = self._read_body()
        if svc.mode == "down":  # kept-alive connections die with the service
            self.close_connection = True
            return
        while svc.mode == "hang":
            time.sleep(0.05)
            if time.monotonic() - t0 > 60:
                self.close_connection = True
                return
        req = Request(self.command, self.path, self.headers, body, svc,
                      getattr(self.server, "kind", "main"))
        op = "?"
        try:
            op, reply = svc.handle(req)
        except Exception:  # a bug in the contract server: say so loudly
            traceback.print_exc()
            reply = Reply(500, {"error": "contract server bug"})
        ms = (time.monotonic() - t0) * 1000
        svc.log.write(json.dumps({"t": round(time.time(), 3), "op": op,
                                  "status": reply.status, "ms": round(ms, 2)}) + "\n")
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Listener:
    """A listener on a fixed port that can be stopped and started again."""

    def __init__(self, service, handler, port, tls, kind="main"):
        self.service, self.handler, self.port, self.tls = service, handler, port, tls
        self.kind = kind
        self.srv = None
        self.thread = None

    def start(self):
        srv = ThreadingServer(("127.0.0.1", self.port), self.handler)
        srv.service = self.service
        srv.kind = self.kind
        if self.tls:
            srv.socket = self.tls.wrap_socket(srv.socket, server_side=True)
        self.port = srv.server_address[1]
        self.srv = srv
        self.thread = threading.Thread(target=srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        svc = self.server.service
        n = int(self.headers.get("Content-Length") or 0)
        msg = json.loads(self.rfile.read(n) or b"{}")
        cmd = msg.pop("cmd", "")
        try:
            result = self.server.app.command(cmd, msg)
            status = 200
        except KeyError:
            result, status = {"error": "unknown command %s" % cmd}, 400
        out = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class App:
    """A service with its TLS listener, extra listeners and the control port."""

    def __init__(self, service, handler=Handler, plain_extra=None):
        self.service = service
        args = service.args
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        self.main = Listener(service, handler, 0, ctx)
        self.extra = {}
        for name in plain_extra or []:  # plain-HTTP side services (metadata)
            self.extra[name] = Listener(service, handler, 0, None, name)
        self.ctl = ThreadingServer(("127.0.0.1", 0), ControlHandler)
        self.ctl.service = service
        self.ctl.app = self

    def command(self, cmd, msg):
        s = self.service
        with s.lock:
            if cmd == "counts":
                return dict(s.counts)
            if cmd == "reset":
                s.counts.clear()
                return {}
            if cmd == "throttle":
                s.throttle = int(msg.get("count", 1))
                return {}
            if cmd == "fail":
                s.fail = int(msg.get("count", 1))
                s.fail_status = int(msg.get("status", 503))
                return {}
        if cmd == "mode":  # up | down (connections refused) | hang
            mode = msg["mode"]
            if mode == "down" and s.mode != "down":
                s.mode = "down"
                self.main.stop()
            elif mode != "down":
                if s.mode == "down":
                    self.main.start()
                s.mode = mode
            return {}
        with s.lock:
            return s.control(cmd, msg)

    def run(self):
        args = self.service.args
        self.main.start()
        self.service.port = self.main.port
        for lst in self.extra.values():
            lst.start()
        ports = {"port": self.main.port,
                 "ctl_port": self.ctl.server_address[1]}
        ports.update({name + "_port": l.port for name, l in self.extra.items()})
        tmp = os.path.join(args.dir, "ports.json.tmp")
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.rename(tmp, os.path.join(args.dir, "ports.json"))
        self.ctl.serve_forever()


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dir", required=True, help="state directory (ports.json, logs)")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--config", required=True, help="service configuration (JSON)")
    return p


def load_config(args):
    with open(args.config) as f:
        return json.load(f)


def now():
    return time.time()
