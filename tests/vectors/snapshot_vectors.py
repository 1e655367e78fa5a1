#!/usr/bin/python3
"""Independent coder of atrest snapshot manifests (docs/FORMAT.md section 8).

Written from the document alone.  With --write, makes
tests/vectors/snapshots.txt from fixed inputs; without, checks every record
of it: the manifest bytes decode to the fields listed and the fields encode
to the bytes, the content hashes, and the sealed manifest object (opened with
the object reader of verify_vectors.py); then mutations of a valid manifest
that break a rule must be refused.

Usage: snapshot_vectors.py [--write] [snapshots.txt]
"""

import hashlib
import hmac
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_vectors as vv  # noqa: E402

MAGIC = b"\x89ATSNAP\x01"
TYPES = {1: "dir", 2: "file", 3: "symlink", 4: "hardlink", 5: "fifo",
         6: "char", 7: "block"}
NAMES = {v: k for k, v in TYPES.items()}
NOOBJ = 0xFFFFFFFF


class Bad(Exception):
    pass


# ------------------------------------------------------------ encoding

def enc_entry(e):
    b = bytes([NAMES[e["type"]]])
    p = e["path"].encode()
    b += struct.pack("<H", len(p)) + p
    b += struct.pack("<IIIq", e["mode"], e["uid"], e["gid"], e["mtime"])
    t = e["type"]
    if t == "file":
        b += struct.pack("<QIQ", e["size"], e["obj"], e["off"]) + e["hash"]
    elif t == "symlink":
        tg = e["target"].encode()
        b += struct.pack("<H", len(tg)) + tg
    elif t == "hardlink":
        b += struct.pack("<I", e["link"])
    elif t in ("char", "block"):
        b += struct.pack("<Q", e["rdev"])
    b += struct.pack("<H", len(e["xattrs"]))
    for name, value in e["xattrs"]:
        n = name.encode()
        b += bytes([len(n)]) + n + struct.pack("<I", len(value)) + value
    return b


def encode(m):
    b = MAGIC + struct.pack("<IQq", 0, m["seq"], m["created"]) + m["writer"]
    for s in (m["name"], m["parent"]):
        s = s.encode()
        b += struct.pack("<H", len(s)) + s
    b += struct.pack("<II", len(m["objects"]), len(m["entries"]))
    for o in m["objects"]:
        b += o["writer"] + struct.pack("<IIQ", o["index"], o["dek"], o["size"])
        b += o["commit"]
    for e in m["entries"]:
        b += enc_entry(e)
    return b


# ------------------------------------------------------------ decoding

class Cur:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise Bad("cut short")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def text(self, n):
        v = self.take(n)
        if b"\0" in v:
            raise Bad("NUL byte")
        return v.decode("utf-8", "surrogateescape")


def dec_entry(c):
    t = c.u("B")
    if t not in TYPES:
        raise Bad("unknown entry type")
    e = {"type": TYPES[t], "path": c.text(c.u("H"))}
    e["mode"], e["uid"], e["gid"], e["mtime"] = (c.u("I"), c.u("I"), c.u("I"),
                                                  c.u("q"))
    if e["type"] == "file":
        e["size"], e["obj"], e["off"] = c.u("Q"), c.u("I"), c.u("Q")
        e["hash"] = c.take(32)
    elif e["type"] == "symlink":
        e["target"] = c.text(c.u("H"))
    elif e["type"] == "hardlink":
        e["link"] = c.u("I")
    elif e["type"] in ("char", "block"):
        e["rdev"] = c.u("Q")
    n = c.u("H")
    e["xattrs"] = []
    for _ in range(n):
        name = c.text(c.u("B"))
        value = c.take(c.u("I"))
        e["xattrs"].append((name, value))
    return e


def check_path(p):
    if p == "":
        return
    if len(p.encode("utf-8", "surrogateescape")) > 4095:
        raise Bad("path too long")
    for comp in p.split("/"):
        if comp in ("", ".", "..") or len(comp.encode()) > 255:
            raise Bad("bad path component")


def check_name(n, empty_ok):
    if n == "" and empty_ok:
        return
    if not n or len(n.encode()) > 1000 or n.startswith("/") or n.endswith("/"):
        raise Bad("bad snapshot name")
    comps = n.split("/")
    if comps[0] == ".atrest":
        raise Bad("bad snapshot name")
    for comp in comps:
        if comp in ("", ".", "..") or len(comp.encode()) > 255:
            raise Bad("bad snapshot name")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in n):
        raise Bad("bad snapshot name")


def key(s):
    return s.encode("utf-8", "surrogateescape")


def check(m):
    if m["seq"] < 1:
        raise Bad("sequence 0")
    check_name(m["name"], False)
    check_name(m["parent"], True)
    objs, ents = m["objects"], m["entries"]
    refs = [(o["writer"], o["index"]) for o in objs]
    if refs != sorted(set(refs)):
        raise Bad("objects out of order or repeated")
    if any(o["size"] == 0 or o["dek"] == 0 for o in objs):
        raise Bad("empty object or no data key")
    if not ents or ents[0]["path"] != "" or ents[0]["type"] != "dir":
        raise Bad("no root first")
    paths = [key(e["path"]) for e in ents]
    if paths != sorted(set(paths)):
        raise Bad("entries out of order or repeated")
    kinds = {key(e["path"]): e["type"] for e in ents}
    used = set()
    for i, e in enumerate(ents):
        check_path(e["path"])
        if i and kinds.get(key(e["path"]).rpartition(b"/")[0]) != "dir":
            raise Bad("parent is not a directory")
        if e["mode"] & ~0o7777:
            raise Bad("mode")
        names = [key(x[0]) for x in e["xattrs"]]
        if names != sorted(set(names)) or len(names) > 1024 or \
                any(not n or len(n) > 255 for n in names) or \
                any(len(x[1]) > 65536 for x in e["xattrs"]):
            raise Bad("extended attributes")
        t = e["type"]
        if t == "file":
            if e["size"] == 0:
                if e["obj"] != NOOBJ or e["off"] or e["hash"] != bytes(32):
                    raise Bad("empty file with an object")
            else:
                if e["obj"] >= len(objs):
                    raise Bad("no such object")
                if e["off"] + e["size"] > objs[e["obj"]]["size"]:
                    raise Bad("past the object's end")
                used.add(e["obj"])
        elif t == "symlink":
            if not 1 <= len(key(e["target"])) <= 4095:
                raise Bad("link target")
        elif t == "hardlink":
            if e["link"] >= i or ents[e["link"]]["type"] != "file":
                raise Bad("hard link")
    if used != set(range(len(objs))):
        raise Bad("an object no file uses")


def decode(b):
    c = Cur(b)
    if c.take(8) != MAGIC:
        raise Bad("magic or version")
    if c.u("I") != 0:
        raise Bad("flags")
    m = {"seq": c.u("Q"), "created": c.u("q"), "writer": c.take(16)}
    m["name"] = c.text(c.u("H"))
    m["parent"] = c.text(c.u("H"))
    nobj, nent = c.u("I"), c.u("I")
    m["objects"] = []
    for _ in range(nobj):
        o = {"writer": c.take(16), "index": c.u("I"), "dek": c.u("I"),
             "size": c.u("Q"), "commit": c.take(32)}
        m["objects"].append(o)
    m["entries"] = [dec_entry(c) for _ in range(nent)]
    if c.i != len(b):
        raise Bad("bytes after the last entry")
    check(m)
    return m


# ------------------------------------------------------------ hashes

def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def content_hash(store_id, data_key, content):
    k = hkdf(store_id, data_key, b"atrest/v1 snapshot content", 32)
    return k, hmac.new(k, content, hashlib.sha256).digest()


def data_name(writer, index):
    return ".atrest/snap/d/%s/%d" % (writer.hex(), index)


# ------------------------------------------------------------ vector text

def fmt_entry(e):
    p = e["path"] or "-"
    s = "%s %s %04o %d %d %d" % (e["type"], p, e["mode"], e["uid"], e["gid"],
                                 e["mtime"])
    if e["type"] == "file":
        s += " %d %d %d %s" % (e["size"], e["obj"], e["off"], e["hash"].hex())
    elif e["type"] == "symlink":
        s += " " + e["target"]
    elif e["type"] == "hardlink":
        s += " %d" % e["link"]
    elif e["type"] in ("char", "block"):
        s += " %d" % e["rdev"]
    lines = ["entry = " + s]
    lines += ["xattr = %s %s" % (n, v.hex()) for n, v in e["xattrs"]]
    return lines


def parse_entry(s):
    f = s.split(" ")
    e = {"type": f[0], "path": "" if f[1] == "-" else f[1], "mode": int(f[2], 8),
         "uid": int(f[3]), "gid": int(f[4]), "mtime": int(f[5]), "xattrs": []}
    if e["type"] == "file":
        e["size"], e["obj"], e["off"] = int(f[6]), int(f[7]), int(f[8])
        e["hash"] = bytes.fromhex(f[9])
    elif e["type"] == "symlink":
        e["target"] = f[6]
    elif e["type"] == "hardlink":
        e["link"] = int(f[6])
    elif e["type"] in ("char", "block"):
        e["rdev"] = int(f[6])
    return e


def records(path):
    recs, cur = [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line:
            if cur:
                recs.append(cur)
            cur = []
            continue
        k, _, v = line.partition(" = ")
        cur.append((k, v))
    if cur:
        recs.append(cur)
    return recs


def manifest_of(rec):
    d = dict(rec)
    m = {"name": d["name"], "parent": d.get("parent", ""), "seq": int(d["seq"]),
         "created": int(d["created"]), "writer": bytes.fromhex(d["writer"]),
         "objects": [], "entries": []}
    for k, v in rec:
        if k == "object":
            w, i, dek, size, commit = v.split(" ")
            m["objects"].append({"writer": bytes.fromhex(w), "index": int(i),
                                 "dek": int(dek), "size": int(size),
                                 "commit": bytes.fromhex(commit)})
        elif k == "entry":
            m["entries"].append(parse_entry(v))
        elif k == "xattr":
            n, val = v.split(" ")
            m["entries"][-1]["xattrs"].append((n, bytes.fromhex(val)))
    return m


# ------------------------------------------------------------ the vectors

STORE_ID = bytes.fromhex("17058299c7635b9408d69dcfb1c25698")
DATA_KEY = bytes.fromhex(
    "d0f325247f9c2f69c6227524bcdc2195a14da1206c5397d1a5b1d320a28e9109")
W1 = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
W2 = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
T0 = 1764000000123456789


def sample():
    files = [b"PG_VERSION 15\n", b"x" * 300, b"hello, world\n"]
    _, h = zip(*[content_hash(STORE_ID, DATA_KEY, f) for f in files])
    objs = [
        {"writer": W1, "index": 1, "dek": 1, "size": 314,
         "commit": hashlib.sha256(b"commit of d/W1/1").digest()},
        {"writer": W2, "index": 3, "dek": 1, "size": 13,
         "commit": hashlib.sha256(b"commit of d/W2/3").digest()},
    ]
    ents = [
        {"type": "dir", "path": "", "mode": 0o700, "uid": 26, "gid": 26,
         "mtime": T0, "xattrs": []},
        {"type": "file", "path": "PG_VERSION", "mode": 0o600, "uid": 26,
         "gid": 26, "mtime": T0 - 5, "size": 14, "obj": 0, "off": 0,
         "hash": h[0], "xattrs": [("user.origin", b"initdb")]},
        {"type": "dir", "path": "base", "mode": 0o700, "uid": 26, "gid": 26,
         "mtime": T0 - 4, "xattrs": []},
        {"type": "file", "path": "base/1", "mode": 0o600, "uid": 26, "gid": 26,
         "mtime": T0 - 3, "size": 300, "obj": 0, "off": 14, "hash": h[1],
         "xattrs": []},
        {"type": "hardlink", "path": "base/1.link", "mode": 0o600, "uid": 26,
         "gid": 26, "mtime": T0 - 3, "link": 3, "xattrs": []},
        {"type": "file", "path": "empty", "mode": 0o644, "uid": 0, "gid": 0,
         "mtime": -1000000001, "size": 0, "obj": NOOBJ, "off": 0,
         "hash": bytes(32), "xattrs": []},
        {"type": "file", "path": "greeting", "mode": 0o4755, "uid": 0,
         "gid": 0, "mtime": T0, "size": 13, "obj": 1, "off": 0, "hash": h[2],
         "xattrs": [("security.capability", bytes(20)),
                    ("user.a", b"")]},
        {"type": "fifo", "path": "pipe", "mode": 0o640, "uid": 0, "gid": 0,
         "mtime": T0, "xattrs": []},
        {"type": "char", "path": "tty", "mode": 0o620, "uid": 0, "gid": 5,
         "mtime": T0, "rdev": 0x8801, "xattrs": []},
        {"type": "symlink", "path": "wal", "mode": 0o777, "uid": 26,
         "gid": 26, "mtime": T0, "target": "../wal/pg_wal", "xattrs": []},
    ]
    m = {"name": "pg/2026-11-22", "parent": "pg/2026-11-21", "seq": 7,
         "created": T0, "writer": W1, "objects": objs, "entries": ents}
    single = {"name": "solo", "parent": "", "seq": 1, "created": 0,
              "writer": W2, "objects": [],
              "entries": [{"type": "dir", "path": "", "mode": 0o755,
                           "uid": 1000, "gid": 1000, "mtime": 0,
                           "xattrs": []}]}
    return [m, single], files


def write(path):
    out = ["# atrest snapshot test vectors (docs/FORMAT.md section 8), made by",
           "# tests/vectors/snapshot_vectors.py --write.  Blank-line-separated",
           "# records; kind manifest (fields, then the bytes), content-hash and",
           "# manifest-object (a manifest sealed as the object",
           "# .atrest/snap/m/NAME, section 2).", ""]
    mans, files = sample()
    for m in mans:
        check(m)
        out += ["kind = manifest", "name = " + m["name"]]
        if m["parent"]:
            out.append("parent = " + m["parent"])
        out += ["seq = %d" % m["seq"], "created = %d" % m["created"],
                "writer = " + m["writer"].hex()]
        for o in m["objects"]:
            out.append("object = %s %d %d %d %s" % (
                o["writer"].hex(), o["index"], o["dek"], o["size"],
                o["commit"].hex()))
        for e in m["entries"]:
            out += fmt_entry(e)
        out += ["bytes = " + encode(m).hex(), ""]
    for f in files:
        k, h = content_hash(STORE_ID, DATA_KEY, f)
        out += ["kind = content-hash", "store_id = " + STORE_ID.hex(),
                "data_key = " + DATA_KEY.hex(), "content = " + f.hex(),
                "hash_key = " + k.hex(), "hash = " + h.hex(), ""]
    m = mans[1]
    salt = hashlib.sha256(b"manifest salt").digest()
    name = ".atrest/snap/m/" + m["name"]
    obj = vv.write_object(1, 1024, DATA_KEY, salt, STORE_ID, b"acme",
                          name.encode(), b"\0\0", encode(m))
    out += ["kind = manifest-object", "cipher = aes-256-gcm",
            "segment_size = 1024", "data_key = " + DATA_KEY.hex(),
            "salt = " + salt.hex(), "store_id = " + STORE_ID.hex(),
            "tenant = acme", "name = " + name,
            "manifest = " + encode(m).hex(), "object = " + obj.hex(), ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


# ------------------------------------------------------------ checks

def mutations(m):
    """Manifests that each break one rule."""
    import copy

    def mut(fn):
        x = copy.deepcopy(m)
        fn(x)
        return x
    e = lambda x, i: x["entries"][i]  # noqa: E731
    yield "dot-dot", mut(lambda x: e(x, 3).update(path="base/.."))
    yield "absolute", mut(lambda x: e(x, 3).update(path="/etc"))
    yield "unsorted", mut(lambda x: x["entries"].reverse())
    yield "duplicate", mut(lambda x: x["entries"].insert(3, e(x, 3)))
    yield "file under a link", mut(lambda x: e(x, 3).update(path="wal/x"))
    yield "no root", mut(lambda x: x["entries"].pop(0))
    yield "past the end", mut(lambda x: e(x, 3).update(size=301))
    yield "unused object", mut(lambda x: e(x, 6).update(obj=0, off=0))
    yield "hard link forward", mut(lambda x: e(x, 4).update(link=5))
    yield "mode bits", mut(lambda x: e(x, 1).update(mode=0o10600))
    yield "sequence 0", mut(lambda x: x.update(seq=0))
    yield "name .atrest", mut(lambda x: x.update(name=".atrest/x"))
    yield "xattr order", mut(lambda x: e(x, 6)["xattrs"].reverse())


def check_manifest(rec):
    want = manifest_of(rec)
    b = bytes.fromhex(dict(rec)["bytes"])
    got = decode(b)
    assert got == want, "decoded fields differ from the record's"
    assert encode(want) == b, "fields encode to other bytes"
    for why, x in mutations(want) if len(want["entries"]) > 3 else []:
        try:
            decode(encode(x))
        except (Bad, struct.error, KeyError, UnicodeDecodeError):
            continue
        raise AssertionError("accepted a manifest with " + why)
    for cut in (0, 7, 44, len(b) - 1):
        try:
            decode(b[:cut])
        except Bad:
            continue
        raise AssertionError("accepted a manifest cut at %d" % cut)


def check_hash(rec):
    d = dict(rec)
    k, h = content_hash(bytes.fromhex(d["store_id"]), bytes.fromhex(d["data_key"]),
                        bytes.fromhex(d["content"]))
    assert k.hex() == d["hash_key"] and h.hex() == d["hash"], "content hash"


def check_object(rec):
    d = dict(rec)
    pt = vv.read_object(bytes.fromhex(d["object"]), bytes.fromhex(d["data_key"]),
                        bytes.fromhex(d["store_id"]), d["tenant"].encode(),
                        d["name"].encode())
    pt = pt[0]
    assert pt == bytes.fromhex(d["manifest"]), "sealed manifest"
    m = decode(pt)
    assert d["name"] == ".atrest/snap/m/" + m["name"], "context name"


def main(argv):
    args = [a for a in argv[1:] if a != "--write"]
    path = args[0] if args else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "snapshots.txt")
    if "--write" in argv:
        write(path)
    n = 0
    for rec in records(path):
        kind = dict(rec)["kind"]
        {"manifest": check_manifest, "content-hash": check_hash,
         "manifest-object": check_object}[kind](rec)
        n += 1
    print("ok - %d snapshot vectors (manifests, content hashes, sealed "
          "manifest)" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
