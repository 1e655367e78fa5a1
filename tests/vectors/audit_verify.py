#!/usr/bin/python3
"""Independent verifier (and vector writer) for atrest audit logs.

Written from docs/AUDIT.md alone ("Chain and signatures"), to show that a
third party can check an audit log with its own code and the public key.
Only the Python standard library and the `cryptography` package are used.

Usage:
  audit_verify.py verify PATH PUBKEY   PATH: a directory of audit-NNNNNN.jsonl
                                       files or one file; PUBKEY: 64 hex
                                       digits or a PEM file.  Exit 0 when
                                       intact, 4 naming the first bad line.
  audit_verify.py make DIR             write the worked example of
                                       docs/AUDIT.md (a fixed test key) to DIR
"""

import base64
import glob
import hashlib
import json
import os
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

DOMAIN = b"atrest-audit-head-v1"


def sigmsg(store_id, seq, prev):
    return DOMAIN + store_id + struct.pack("<Q", seq) + prev


class Bad(Exception):
    pass


def load_pub(arg):
    if re.fullmatch(r"[0-9a-fA-F]{64}", arg):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(arg))
    return serialization.load_pem_public_key(open(arg, "rb").read())


def segments(path):
    if not os.path.isdir(path):
        return [path], False
    files = sorted(glob.glob(os.path.join(path, "audit-*.jsonl")))
    nums = [int(re.search(r"audit-(\d+)\.jsonl$", f).group(1)) for f in files]
    for a, b, f in zip(nums, nums[1:], files[1:]):
        if b != a + 1:
            raise Bad("%s:1: the segment before this one is missing" % f)
    return files, bool(nums) and nums[0] == 1


def verify(path, pub):
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fp = hashlib.sha256(raw).hexdigest()[:16]
    files, from_one = segments(path)
    prev = prev_seq = None
    last_head = False
    lines = 0
    for i, f in enumerate(files):
        data = open(f, "rb").read()
        if data and not data.endswith(b"\n"):
            raise Bad("%s:%d: torn last line" % (f, data.count(b"\n") + 1))
        sealed = False
        for n, line in enumerate(data.split(b"\n")[:-1], 1):
            where = "%s:%d" % (f, n)
            if sealed:
                raise Bad(where + ": a line after the segment's final head")
            e = json.loads(line)
            seq, p = e["seq"], bytes.fromhex(e["prev"])
            if prev is None:
                if (seq == 1 and p != bytes(32)) or (from_one and seq != 1):
                    raise Bad(where + ": the log does not start a chain")
            elif p != prev or seq != prev_seq + 1:
                raise Bad(where + ": does not follow the line before it")
            if e["op"] == "head":
                if e.get("key") != fp:
                    raise Bad(where + ": signed by another key")
                sig = base64.b64decode(e["sig"], validate=True)
                try:
                    pub.verify(sig, sigmsg(bytes.fromhex(e["store"]), seq, p))
                except InvalidSignature:
                    raise Bad(where + ": the head's signature does not verify")
                sealed = e.get("last") is True
            last_head = e["op"] == "head"
            prev, prev_seq = hashlib.sha256(line).digest(), seq
            lines += 1
        if i + 1 < len(files) and not sealed:
            raise Bad("%s: the segment does not end with its final head" % f)
    if not lines:
        raise Bad("%s: no audit lines" % path)
    if not last_head:
        raise Bad("%s: lines after the last signed head" % path)
    return lines


def make(outdir):
    """The worked example: a fixed test key, three events, two heads."""
    seed = hashlib.sha256(b"atrest audit test vector").digest()
    key = Ed25519PrivateKey.from_private_bytes(seed)
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    store = bytes(range(16))
    fp = hashlib.sha256(raw).hexdigest()[:16]
    events = [
        {"op": "put", "outcome": "ok", "principal": "alice", "tenant": "",
         "name": "job-42/chk-17", "bytes": 4096, "data_key": 1,
         "master_key": "fp:0011223344556677", "latency_us": 812, "pid": 4242},
        {"op": "get", "outcome": "integrity", "principal": "apikey:7f3a",
         "tenant": "acme", "name": "job-42/chk-16", "bytes": 0, "data_key": 1,
         "master_key": "fp:0011223344556677", "latency_us": 95, "pid": 4242,
         "error": "segment 3 failed authentication"},
        "head",
        {"op": "delete", "outcome": "ok", "principal": "alice", "tenant": "",
         "name": "job-42/chk-1", "master_key": "fp:0011223344556677",
         "latency_us": 40, "pid": 4242},
        "head",
    ]
    prev, seq, out = bytes(32), 0, []
    for i, ev in enumerate(events):
        seq += 1
        head = {"seq": seq, "time": "2026-11-29T10:00:0%d.000000Z" % i,
                "prev": prev.hex()}
        if ev == "head":
            sig = key.sign(sigmsg(store, seq, prev))
            head.update({"op": "head", "store": store.hex(), "key": fp,
                         "sig": base64.b64encode(sig).decode(), "pid": 4242})
        else:
            head.update(ev)
        line = json.dumps(head, separators=(",", ":")).encode()
        out.append(line + b"\n")
        prev = hashlib.sha256(line).digest()
    os.makedirs(outdir, exist_ok=True)
    open(os.path.join(outdir, "audit-000001.jsonl"), "wb").write(b"".join(out))
    open(os.path.join(outdir, "pubkey.hex"), "w").write(raw.hex() + "\n")
    open(os.path.join(outdir, "seed.hex"), "w").write(seed.hex() + "\n")


def main(argv):
    if len(argv) == 3 and argv[1] == "make":
        make(argv[2])
        return 0
    if len(argv) != 4 or argv[1] != "verify":
        sys.stderr.write(__doc__)
        return 2
    try:
        n = verify(argv[2], load_pub(argv[3]))
    except (Bad, ValueError, KeyError, TypeError) as e:
        print("audit_verify.py: %s" % e, file=sys.stderr)
        return 4
    print("verified %d lines" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
