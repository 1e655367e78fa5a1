#!/usr/bin/python3
"""Raw-socket clients for the server tests (standard library only): the
misbehaving, slow and many clients that curl cannot play.  Every socket
has a timeout; every command ends by itself.

usage: httpc.py COMMAND PORT [ARGS...]; prints one line, exits 0 when the
server behaved as required.
"""
import os
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def conn(port, timeout=30):
    s = socket.create_connection((HOST, port), timeout=timeout)
    return s


def read_response(s, limit=1 << 20):
    """Status code of the response on s, or None when closed first."""
    data = b""
    try:
        while b"\r\n" not in data and len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


def healthz(port):
    s = conn(port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    code = read_response(s)
    s.close()
    return code == 200


def closed_by_server(s, within):
    """True when the server closes s within seconds."""
    s.settimeout(within)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except OSError:
        return False


def cmd_malformed(port):
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"PUT /v1/checkpoints/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"PUT /v1/checkpoints/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"PUT /v1/checkpoints/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"PUT /v1/checkpoints/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"PUT /v1/checkpoints/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 300000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n",
        b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
        b"GET /v1/checkpoints/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://h/v1/checkpoints/x?%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    codes = []
    for b in bad:
        s = conn(port, timeout=10)
        try:
            s.sendall(b)
        except OSError:
            pass
        codes.append(read_response(s))
        s.close()
        if not healthz(port):
            print("server not healthy after", b[:40])
            return 1
    if any(c is not None and c < 400 for c in codes):
        print("a malformed request was answered", codes)
        return 1
    print("malformed requests answered", codes)
    return 0


def cmd_random(port, n="200"):
    rnd = open("/dev/urandom", "rb")
    for i in range(int(n)):
        s = conn(port)
        try:
            s.sendall(rnd.read(4096 if i % 2 else 64))
            s.settimeout(0.5)
            s.recv(4096)
        except OSError:
            pass
        s.close()
    ok = healthz(port)
    print("random bytes on %s connections; healthy: %s" % (n, ok))
    return 0 if ok else 1


def cmd_slowloris(port, n="50", deadline="60"):
    """n connections sending their head a byte a second: the server must
    keep serving others and close them by itself."""
    socks = []
    for _ in range(int(n)):
        s = conn(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    start = time.time()
    closed = set()
    healthy = True
    while len(closed) < len(socks) and time.time() - start < float(deadline):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.sendall(b"X")
            except OSError:
                closed.add(i)
        healthy = healthy and healthz(port)
        time.sleep(1)
    for s in socks:
        s.close()
    print("slowloris: %d of %s closed by the server in %.0f s; others served: %s"
          % (len(closed), n, time.time() - start, healthy))
    return 0 if healthy and len(closed) == len(socks) else 1


def cmd_idle(port, n="1000", hold="5"):
    socks = []
    for _ in range(int(n)):
        socks.append(conn(port))
    time.sleep(float(hold))
    ok = healthz(port)
    for s in socks:
        s.close()
    time.sleep(1)
    ok = ok and healthz(port)
    print("%s idle connections held %s s; served meanwhile and after: %s" % (n, hold, ok))
    return 0 if ok else 1


def put_head(name, length, keyfile, extra=b""):
    key = open(keyfile).read().strip().encode()
    return (b"PUT /v1/checkpoints/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (name.encode(), key, length, extra))


def cmd_abandon(port, keyfile, name, total, sent):
    """Send sent of total body bytes, then disconnect."""
    s = conn(port)
    s.sendall(put_head(name, int(total), keyfile))
    left = int(sent)
    block = b"\x5a" * 65536
    while left > 0:
        s.sendall(block[:min(left, len(block))])
        left -= min(left, len(block))
    s.close()
    print("sent %s of %s bytes of %s, then disconnected" % (sent, total, name))
    return 0


def get_body(port, keyfile, name):
    """Status and body of a GET (Connection: close)."""
    key = open(keyfile).read().strip().encode()
    s = conn(port)
    s.sendall(b"GET /v1/checkpoints/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Connection: close\r\n\r\n" % (name.encode(), key))
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def cmd_create_race(port, keyfile, name, port2, racers="8"):
    """racers create-only PUTs of one name, alternating between two server
    processes on one store, each with half its body sent before any sends
    the rest: exactly one is 201 and the object is its body; every other is
    412.  Which requests pass the early check before the first commit does
    not change that outcome; only the commit decides."""
    ports = [int(port), int(port2)]
    n = int(racers)
    bodies = [(b"racer-%02d-" % i) * 1000 for i in range(n)]
    half = len(bodies[0]) // 2
    socks = []
    for i in range(n):
        s = conn(ports[i % 2], timeout=120)
        s.sendall(put_head(name, len(bodies[i]), keyfile, b"If-None-Match: *\r\n"))
        s.sendall(bodies[i][:half])
        socks.append(s)
    time.sleep(0.5)  # the halves reach their writers; not relied upon
    codes = [None] * n

    def finish(i):
        socks[i].sendall(bodies[i][half:])
        codes[i] = read_response(socks[i])
        socks[i].close()

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    winners = [i for i in range(n) if codes[i] == 201]
    status, body = get_body(ports[0], keyfile, name)
    late = conn(ports[1])
    late.sendall(put_head(name, 2, keyfile, b"If-None-Match: *\r\n") + b"yy")
    c_late = read_response(late)
    late.close()
    print("create-only race over 2 processes: %s; GET %s; later create %s" % (codes, status, c_late))
    ok = (len(winners) == 1 and all(c == 412 for i, c in enumerate(codes) if i not in winners)
          and status == 200 and body == bodies[winners[0]] and c_late == 412)
    return 0 if ok else 1


def cmd_slow_uploads(port, keyfile, n, size, seconds, donefile):
    """n uploads of size bytes each spread over seconds; prints statuses."""
    codes = [None] * int(n)

    def one(i):
        s = conn(port, timeout=120)
        s.sendall(put_head("drain/%d" % i, int(size), keyfile))
        steps = 20
        piece = int(size) // steps
        for k in range(steps):
            n_ = piece if k < steps - 1 else int(size) - piece * (steps - 1)
            s.sendall(bytes([65 + i]) * n_)
            if k == 2 and i == 0:
                open(donefile, "w").close()  # uploads are under way
            time.sleep(float(seconds) / steps)
        codes[i] = read_response(s)
        s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(int(n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    print("uploads during SIGTERM answered", codes)
    return 0 if all(c == 201 for c in codes) else 1


def cmd_refused(port):
    try:
        s = conn(port, timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        code = read_response(s)
        s.close()
        print("new connection after SIGTERM got", code)
        return 0 if code is None else 1
    except OSError as e:
        print("new connection after SIGTERM refused:", e)
        return 0


def main():
    cmd = sys.argv[1].replace("-", "_")
    port = int(sys.argv[2])
    return globals()["cmd_" + cmd](port, *sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
