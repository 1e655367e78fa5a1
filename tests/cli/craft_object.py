#!/usr/bin/python3
"""Write an authentic but malformed object into a store (CLI tests).

The data key comes from the keyring (keyring_tool.py, FORMAT.md section 4),
the object from the independent writer of tests/vectors/verify_vectors.py:
sealed with the store's active data key, yet breaking a rule of FORMAT.md
2.4 or 2.5, which every reader must refuse.

Usage: craft_object.py STORE HEXKEY NAME KIND
KIND: empty-key | trailing | nul | count | short-segment | fine
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vectors"))
sys.path.insert(0, HERE)

import keyring_tool  # noqa: E402
import verify_vectors as vv  # noqa: E402

S = 1024
KINDS = {
    # metadata bytes, cipher, plaintext segments
    "empty-key": (b"\x01\x00\x00\x00\x01\x00\x00\x00v", 1, [b"x"]),
    "trailing": (b"\x00\x00\xff", 1, [b"x"]),
    "nul": (b"\x01\x00\x01\x00k\x02\x00\x00\x00v\x00", 1, [b"x"]),
    "count": (b"\x02\x00\x01\x00k\x01\x00\x00\x00v", 1, [b"x"]),
    "short-segment": (b"\x00\x00", 3, [b"a" * (S - 5), b"b" * 100]),
    "fine": (b"\x01\x00\x01\x00k\x01\x00\x00\x00v", 3, [b"a" * S, b"b" * 100]),
}


def main(argv):
    store, key, name, kind = argv[1:5]
    kr = keyring_tool.load(os.path.join(store, ".atrest", "keyring"))
    active = kr["active"]
    dk = keyring_tool.data_key(kr, bytes.fromhex(key), active)
    md, cid, segs = KINDS[kind]
    obj = vv.write_segments(cid, S, dk, os.urandom(32),
                            bytes.fromhex(kr["store_id"]), b"", name.encode(),
                            md, segs, key_id=active)
    with open(os.path.join(store, name), "wb") as f:
        f.write(obj)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
