#!/usr/bin/python3
"""The keyring MAC of docs/FORMAT.md section 4, written from the document.

Used by tests/cli/test_keyring_mac.sh to check that the document is exact
(the MAC of a keyring atrest wrote is recomputed here) and to play the
attacker of a stolen old master key (a keyring edited and MAC'd with the
MAC key an old copy of the keyring gives).  Local raw keys only (4.1).

Usage:
  keyring_tool.py verify KEYRING HEXKEY   (MAC; and the audit key, when there
                                           is one, unwraps to its public half)
  keyring_tool.py forge KEYRING OLDKEYRING HEXKEY ACTIVATE_ID OUT
  keyring_tool.py data-key KEYRING HEXKEY ID
"""

import base64
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

STATUS = {"active": 1, "retired": 2, "exposed": 3, "destroyed": 4}


def hkdf(ikm, salt, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt or None,
                info=info).derive(ikm)


def unwrap(mk, wrapped, aad):
    kek = hkdf(mk, b"", b"atrest/v1 kek", 32)
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def store_id(kr):
    return bytes.fromhex(kr["store_id"])


def check_secret(kr, mk):
    sid = store_id(kr)
    aad = b"atrest/v1 check" + sid + struct.pack("<I", 0)
    return unwrap(mk, base64.b64decode(kr["check"], validate=True), aad)


def mac_key(kr, mk):
    return hkdf(check_secret(kr, mk), store_id(kr), b"atrest/v1 keyring mac", 32)


def data_key(kr, mk, kid):
    k = next(k for k in kr["keys"] if k["id"] == kid)
    aad = b"atrest/v1 dek" + store_id(kr) + struct.pack("<I", kid)
    return unwrap(mk, base64.b64decode(k["wrapped"], validate=True), aad)


def lp(b):
    return struct.pack("<Q", len(b)) + b


def canonical(kr):
    m = kr["master"]
    v2 = kr.get("version", 1) >= 2
    label = b"atrest-keyring-v2" if v2 else b"atrest-keyring-v1"
    out = [lp(label), store_id(kr),
           struct.pack("<QQ", kr["generation"], kr["active"]),
           lp(m["kind"].encode()), lp(m["key_id"].encode()),
           lp((m.get("params") or "").encode()),
           lp(base64.b64decode(kr["check"], validate=True)),
           struct.pack("<Q", len(kr["keys"]))]
    for k in kr["keys"]:
        w = base64.b64decode(k["wrapped"], validate=True) if "wrapped" in k else b""
        out.append(struct.pack("<QqQ", k["id"], k["created"], STATUS[k["status"]]))
        out.append(lp(w))
    if v2:
        st = kr["settings"]
        out += [lp(kr.get("tenant", "").encode()), lp(st["cipher"].encode()),
                struct.pack("<QQQ", st["segment_size"], st["rotate_days"],
                            st["force_days"]),
                struct.pack("<Q", len(kr.get("tenants", [])))]
        for t in kr.get("tenants", []):
            out += [lp(t["name"].encode()), bytes.fromhex(t["id"]),
                    lp(t.get("key_uri", "").encode()),
                    lp(t.get("key_file", "").encode())]
        if "audit" in kr:
            a = kr["audit"]
            out += [lp(b"audit"), bytes.fromhex(a["public"]),
                    lp(base64.b64decode(a["wrapped"], validate=True))]
    return b"".join(out)


def check_audit(kr, mk):
    """The audit seed unwraps under mk and gives the recorded public key."""
    if "audit" not in kr:
        return
    a = kr["audit"]
    aad = b"atrest/v1 audit" + store_id(kr) + struct.pack("<I", 0)
    seed = unwrap(mk, base64.b64decode(a["wrapped"], validate=True), aad)
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if pub.hex() != a["public"]:
        sys.exit("audit seed does not match its public key")


def mac(kr, kmac):
    return hmac.new(kmac, canonical(kr), hashlib.sha256).hexdigest()


def main(argv):
    if argv[1] == "verify":
        kr = load(argv[2])
        want = mac(kr, mac_key(kr, bytes.fromhex(argv[3])))
        if not hmac.compare_digest(want, kr["mac"]):
            sys.exit("MAC differs: FORMAT.md section 4 does not describe it")
        check_audit(kr, bytes.fromhex(argv[3]))
        return 0
    if argv[1] == "forge":
        kr, old = load(argv[2]), load(argv[3])
        kmac = mac_key(old, bytes.fromhex(argv[4]))
        target = int(argv[5])
        for k in kr["keys"]:
            if k["status"] == "active":
                k["status"] = "retired"
            if k["id"] == target:
                k["status"] = "active"
        kr["active"] = target
        kr["generation"] += 1
        kr["mac"] = mac(kr, kmac)
        with open(argv[6], "w") as f:
            json.dump(kr, f, indent=1)
        return 0
    if argv[1] == "data-key":
        print(data_key(load(argv[2]), bytes.fromhex(argv[3]), int(argv[4])).hex())
        return 0
    sys.exit("unknown command %r" % argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
