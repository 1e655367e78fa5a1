#!/usr/bin/python3
"""Independent reader/writer for atrest store objects (form 1) and records.

Written from docs/FORMAT.md sections 1-3 alone, to check that the document is
complete enough to reproduce tests/vectors/objects.txt and
tests/vectors/records.txt. Only the Python standard library and the
`cryptography` package are used.

Usage: verify_vectors.py [objects.txt]
"""

import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.exceptions import InvalidTag

MAGIC = b"\x89ATREST"
CIPHER_IDS = {
    "aes-256-gcm": 1,
    "chacha20-poly1305": 2,
    "aes-256-cbc-hmac-sha256": 3,
}
META_NONCE_INDEX = 0xFFFFFFFF
MAX_METADATA = 65536
# The vector records carry no data key id; every vector header says 1.
DATA_KEY_ID = 1


class IntegrityError(Exception):
    """Any failure to parse, authenticate or match an object."""


# ---------------------------------------------------------------- section 1

def key_len(cid):
    return 64 if cid == 3 else 32


def overhead(cid, n):
    if cid in (1, 2):
        return n + 16
    if cid == 3:
        return ((n + 15) // 16) * 16 + 1 + 32
    raise IntegrityError("unknown cipher %r" % cid)


def _hmac(key, data):
    h = chmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def _cbc_iv(kenc, nonce):
    enc = Cipher(algorithms.AES(kenc), modes.ECB()).encryptor()
    return enc.update(nonce + b"\x00\x00\x00\x00") + enc.finalize()


def seal(cid, key, nonce, ad, pt):
    assert len(key) == key_len(cid) and len(nonce) == 12
    if cid == 1:
        return AESGCM(key).encrypt(nonce, pt, ad)
    if cid == 2:
        return ChaCha20Poly1305(key).encrypt(nonce, pt, ad)
    if cid == 3:
        if ad:
            raise ValueError("cipher 3 takes no additional data")
        kenc, kmac = key[:32], key[32:]
        pad = (16 - len(pt) % 16) % 16
        padded = pt + b"\x00" * pad
        iv = _cbc_iv(kenc, nonce)
        enc = Cipher(algorithms.AES(kenc), modes.CBC(iv)).encryptor()
        c = enc.update(padded) + enc.finalize()
        t = _hmac(kmac, nonce + c + bytes([pad]))
        return c + bytes([pad]) + t
    raise IntegrityError("unknown cipher %r" % cid)


def open_(cid, key, nonce, ad, sealed):
    assert len(key) == key_len(cid) and len(nonce) == 12
    if cid in (1, 2):
        if len(sealed) < 16:
            raise IntegrityError("sealed block shorter than tag")
        aead = AESGCM(key) if cid == 1 else ChaCha20Poly1305(key)
        try:
            return aead.decrypt(nonce, sealed, ad)
        except InvalidTag:
            raise IntegrityError("tag mismatch")
    if cid == 3:
        if ad:
            raise IntegrityError("cipher 3 takes no additional data")
        if len(sealed) < 33 or (len(sealed) - 33) % 16 != 0:
            raise IntegrityError("bad cbc-hmac length")
        kenc, kmac = key[:32], key[32:]
        c = sealed[:-33]
        padb = sealed[-33:-32]
        tag = sealed[-32:]
        want = _hmac(kmac, nonce + c + padb)
        if not hmac.compare_digest(want, tag):
            raise IntegrityError("hmac mismatch")
        pad = padb[0]
        if pad > 15:
            raise IntegrityError("bad pad")
        iv = _cbc_iv(kenc, nonce)
        dec = Cipher(algorithms.AES(kenc), modes.CBC(iv)).decryptor()
        p = dec.update(c) + dec.finalize()
        if pad:
            if len(p) < pad or any(p[len(p) - pad:]):
                raise IntegrityError("bad padding bytes")
            p = p[: len(p) - pad]
        return p
    raise IntegrityError("unknown cipher %r" % cid)


# ---------------------------------------------------------------- section 2

def nonce(prefix, i, f):
    return prefix + struct.pack(">I", i) + bytes([f])


def derive(cid, data_key, salt, header_wo_commit):
    info = b"atrest/v1 object" + hashlib.sha256(header_wo_commit).digest()
    k = key_len(cid)
    okm = HKDF(algorithm=hashes.SHA256(), length=k + 7 + 32, salt=salt,
               info=info).derive(data_key)
    return okm[:k], okm[k:k + 7], okm[k + 7:k + 39]


def printable(b):
    return all(0x20 <= x != 0x7F for x in b)


def encode_context(store_id, tenant, name):
    return (store_id + bytes([len(tenant)]) + tenant
            + struct.pack("<H", len(name)) + name)


def parse_context(ctx):
    if len(ctx) < 16 + 1:
        raise IntegrityError("context too short")
    store_id = ctx[:16]
    tl = ctx[16]
    if tl > 64:
        raise IntegrityError("tenant too long")
    p = 17
    if p + tl + 2 > len(ctx):
        raise IntegrityError("context overrun (tenant)")
    tenant = ctx[p:p + tl]
    p += tl
    (nl,) = struct.unpack_from("<H", ctx, p)
    p += 2
    if nl > 1024:
        raise IntegrityError("name too long")
    if p + nl != len(ctx):
        raise IntegrityError("context length mismatch")
    name = ctx[p:p + nl]
    if not printable(tenant) or not printable(name):
        raise IntegrityError("non-printable tenant or name")
    return store_id, tenant, name


def parse_header(buf):
    """Parse and limit-check a header from the first bytes of an object."""
    buf = buf[:4096]
    if len(buf) < 60 or buf[:7] != MAGIC:
        raise IntegrityError("no magic / too short")
    if buf[7] != 1:
        raise IntegrityError("bad version")
    form = buf[8]
    if form not in (1, 2):
        raise IntegrityError("bad form")
    cid = buf[9]
    if cid not in (1, 2, 3):
        raise IntegrityError("unknown cipher")
    (flags,) = struct.unpack_from("<H", buf, 10)
    if flags != 0:
        raise IntegrityError("flags not zero")
    S, key_id, M = struct.unpack_from("<III", buf, 12)
    if not (1024 <= S <= 16 * 1024 * 1024):
        raise IntegrityError("segment size out of range")
    if cid == 3 and S % 16:
        raise IntegrityError("segment size not multiple of 16")
    if not (overhead(cid, 0) <= M <= overhead(cid, MAX_METADATA)):
        raise IntegrityError("metadata length out of range")
    salt = buf[24:56]
    (L,) = struct.unpack_from("<H", buf, 56)
    if L > 1107:
        raise IntegrityError("context too long")
    if 58 + L + 2 > len(buf):
        raise IntegrityError("context beyond bytes read")
    ctx = buf[58:58 + L]
    (E,) = struct.unpack_from("<H", buf, 58 + L)
    if E > 2048:
        raise IntegrityError("extension too long")
    if form == 1 and E != 0:
        raise IntegrityError("extension in form 1")
    H = 92 + L + E
    if H > len(buf):
        raise IntegrityError("header beyond bytes read")
    ext = buf[60 + L:60 + L + E]
    commit = buf[60 + L + E:H]
    store_id, tenant, name = parse_context(ctx)
    return dict(form=form, cipher=cid, S=S, key_id=key_id, M=M, salt=salt,
                store_id=store_id, tenant=tenant, name=name, ext=ext,
                commit=commit, H=H, raw=buf[:H])


def parse_metadata(md):
    if len(md) < 2 or len(md) > MAX_METADATA:
        raise IntegrityError("metadata size")
    (count,) = struct.unpack_from("<H", md, 0)
    p = 2
    out = []
    for _ in range(count):
        if p + 2 > len(md):
            raise IntegrityError("metadata overrun")
        (kl,) = struct.unpack_from("<H", md, p)
        p += 2
        k = md[p:p + kl]
        p += kl
        if len(k) != kl or p + 4 > len(md):
            raise IntegrityError("metadata overrun")
        (vl,) = struct.unpack_from("<I", md, p)
        p += 4
        v = md[p:p + vl]
        p += vl
        if len(v) != vl:
            raise IntegrityError("metadata overrun")
        if not k:
            raise IntegrityError("empty metadata key")
        if b"\x00" in k or b"\x00" in v:
            raise IntegrityError("NUL in metadata")
        out.append((k, v))
    if p != len(md):
        raise IntegrityError("trailing metadata bytes")
    return out


def read_object(obj, data_key, store_id, tenant, name):
    """Returns (plaintext, encoded metadata) or raises IntegrityError."""
    h = parse_header(obj)
    if h["form"] != 1:
        raise IntegrityError("not a store object (form %d)" % h["form"])
    if h["store_id"] != store_id:
        raise IntegrityError("moved from another store")
    if h["key_id"] != DATA_KEY_ID:
        raise IntegrityError("unknown data key id")
    cid, H, M, S = h["cipher"], h["H"], h["M"], h["S"]
    K, P, C = derive(cid, data_key, h["salt"], h["raw"][:H - 32])
    if not hmac.compare_digest(C, h["commit"]):
        raise IntegrityError("key commitment mismatch")
    if h["tenant"] != tenant or h["name"] != name:
        raise IntegrityError("moved or copied")

    # layout (2.5)
    Z = len(obj)
    F = overhead(cid, S)
    o0 = overhead(cid, 0)
    B = Z - H - M
    if B < o0:
        raise IntegrityError("object too short")
    n = -(-B // F)
    last = B - (n - 1) * F
    if n > 1 and last <= o0:
        raise IntegrityError("last segment too short")
    if cid == 3 and (last - 33) % 16 != 0:
        raise IntegrityError("last segment length not block aligned")
    if n > 0xFFFFFFFF:
        raise IntegrityError("too many segments")

    md = open_(cid, K, nonce(P, META_NONCE_INDEX, 2), b"", obj[H:H + M])
    parse_metadata(md)

    parts = []
    for i in range(n):
        off = H + M + i * F
        is_last = i == n - 1
        seg = obj[off:off + (last if is_last else F)]
        pt = open_(cid, K, nonce(P, i, 1 if is_last else 0), b"", seg)
        if is_last:
            if n > 1 and len(pt) == 0:
                raise IntegrityError("empty last segment")
        elif len(pt) != S:
            raise IntegrityError("short non-last segment")
        parts.append(pt)
    return b"".join(parts), md


def write_segments(cid, S, data_key, salt, store_id, tenant, name, md,
                   segments, key_id=DATA_KEY_ID):
    """Seal md and the given plaintext segments as they are, the last one
    flagged last (write_object cuts a plaintext; negative tests craft)."""
    ctx = encode_context(store_id, tenant, name)
    M = overhead(cid, len(md))
    pre = (MAGIC + bytes([1, 1, cid]) + b"\x00\x00"
           + struct.pack("<III", S, key_id, M) + salt
           + struct.pack("<H", len(ctx)) + ctx + struct.pack("<H", 0))
    K, P, C = derive(cid, data_key, salt, pre)
    out = [pre, C, seal(cid, K, nonce(P, META_NONCE_INDEX, 2), b"", md)]
    n = len(segments)
    for i, seg in enumerate(segments):
        out.append(seal(cid, K, nonce(P, i, 1 if i == n - 1 else 0), b"", seg))
    return b"".join(out)


def write_object(cid, S, data_key, salt, store_id, tenant, name, md, pt,
                 key_id=DATA_KEY_ID):
    n = max(1, -(-len(pt) // S))
    segments = [pt[i * S:(i + 1) * S] for i in range(n)]
    return write_segments(cid, S, data_key, salt, store_id, tenant, name, md,
                          segments, key_id)


# ---------------------------------------------------------------- vectors

HEX_FIELDS = ("data_key", "salt", "store_id", "metadata", "plaintext",
              "object")


def parse_vectors(path):
    records, cur = [], {}
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if cur:
                    records.append(cur)
                    cur = {}
                continue
            k, sep, v = line.partition("=")
            if not sep:
                raise ValueError("%s:%d: no '='" % (path, lineno))
            k, v = k.strip(), v.strip()
            cur[k] = v
    if cur:
        records.append(cur)
    out = []
    for r in records:
        d = dict(r)
        for k in HEX_FIELDS:
            d[k] = bytes.fromhex(r[k])
        # tenant and name are written as text in objects.txt
        d["tenant"] = r["tenant"].encode("utf-8")
        d["name"] = r["name"].encode("utf-8")
        d["segment_size"] = int(r["segment_size"])
        d["cid"] = CIPHER_IDS[r["cipher"]]
        out.append(d)
    return out


def must_fail(obj, r):
    try:
        read_object(obj, r["data_key"], r["store_id"], r["tenant"], r["name"])
    except IntegrityError:
        return True
    return False


def check_record(r):
    errs = []
    obj = r["object"]
    args = (r["data_key"], r["store_id"], r["tenant"], r["name"])

    # header fields against the record
    try:
        h = parse_header(obj)
        if h["cipher"] != r["cid"]:
            errs.append("header cipher %d" % h["cipher"])
        if h["S"] != r["segment_size"]:
            errs.append("header segment size %d" % h["S"])
        if h["salt"] != r["salt"]:
            errs.append("header salt differs")
    except IntegrityError as e:
        errs.append("header: %s" % e)
        return errs

    # read
    try:
        pt, md = read_object(obj, *args)
        if pt != r["plaintext"]:
            errs.append("plaintext differs")
        if md != r["metadata"]:
            errs.append("metadata differs")
    except IntegrityError as e:
        errs.append("read: %s" % e)

    # re-encrypt
    built = write_object(r["cid"], r["segment_size"], r["data_key"], r["salt"],
                         r["store_id"], r["tenant"], r["name"], r["metadata"],
                         r["plaintext"])
    if built != obj:
        first = next((i for i in range(min(len(built), len(obj)))
                      if built[i] != obj[i]), min(len(built), len(obj)))
        errs.append("re-encryption differs (len %d vs %d, first diff at %d)"
                    % (len(built), len(obj), first))

    # negative checks: byte flips
    H, M = h["H"], h["M"]
    Z = len(obj)
    F = overhead(r["cid"], r["segment_size"])
    n = max(1, -(-(Z - H - M) // F))
    last_off = H + M + (n - 1) * F
    positions = {
        0, 7, 8, 9, 10, 12, 16, 20, 24, 55, 56, 58, 58 + 16, H - 34,  # header
        H - 32, H - 1,                                  # commitment
        H, H + M // 2, H + M - 1,                       # metadata
        H + M, H + M + min(F, Z - H - M) - 1,           # first segment
        last_off, (last_off + Z) // 2,                  # last segment
        Z - 1,                                          # last byte
    }
    for pos in sorted(p for p in positions if 0 <= p < Z):
        bad = bytearray(obj)
        bad[pos] ^= 0x01
        if not must_fail(bytes(bad), r):
            errs.append("flip at %d accepted" % pos)
        bad[pos] ^= 0x81  # now flipped by 0x80
        if not must_fail(bytes(bad), r):
            errs.append("flip 0x80 at %d accepted" % pos)

    # truncation and extension
    cuts = {Z - 1, H + M + (n - 1) * F}
    if n > 1:
        cuts.add(H + M + F)
    cuts.add(H + M)
    for c in sorted(cuts):
        if c < Z and not must_fail(obj[:c], r):
            errs.append("truncation to %d accepted" % c)
    if not must_fail(obj + b"\x00", r):
        errs.append("appending 1 byte accepted")
    if not must_fail(obj + obj[-1:], r):
        errs.append("appending copy of last byte accepted")

    # wrong context / key
    if not must_fail(obj, dict(r, name=r["name"] + b"x")):
        errs.append("wrong name accepted")
    if not must_fail(obj, dict(r, tenant=r["tenant"] + b"x")):
        errs.append("wrong tenant accepted")
    if not must_fail(obj, dict(r, store_id=bytes(16))):
        errs.append("wrong store accepted")
    if not must_fail(obj, dict(r, data_key=bytes(32))):
        errs.append("wrong data key accepted")
    return errs


def self_test():
    """Round trips with random inputs across sizes and ciphers."""
    errs = []
    for cid in (1, 2, 3):
        for size in (0, 1, 15, 16, 17, 1023, 1024, 1025, 2048, 3000):
            dk, salt, sid = os.urandom(32), os.urandom(32), os.urandom(16)
            md = b"\x01\x00\x01\x00a\x01\x00\x00\x00b"
            pt = os.urandom(size)
            obj = write_object(cid, 1024, dk, salt, sid, b"t", b"n", md, pt)
            try:
                got, gmd = read_object(obj, dk, sid, b"t", b"n")
                if got != pt or gmd != md:
                    errs.append("self-test mismatch cipher %d size %d"
                                % (cid, size))
            except IntegrityError as e:
                errs.append("self-test cipher %d size %d: %s" % (cid, size, e))
    return errs


# ---------------------------------------------------------------- section 3

RECORD_FORMS = {0xC0: 2, 0xB0: 1}


def record_key(version, cid, data_key, store_id, namespace):
    if version == 2:
        info = b"atrest/v2 record" + bytes([cid]) + namespace
    else:
        info = b"atrest/v1 record" + namespace
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=store_id,
                info=info).derive(data_key)


def seal_record(version, cid, key_id, data_key, store_id, namespace, nonce_,
                ad, pt):
    form = 0xC0 if version == 2 else 0xB0
    head = bytes([form | cid]) + struct.pack("<I", key_id)[:3] + nonce_
    k = record_key(version, cid, data_key, store_id, namespace)
    return head + seal(cid, k, nonce_, head + ad, pt)


def open_record(rec, data_key, store_id, namespace, ad):
    if len(rec) < 32:
        raise IntegrityError("record too short")
    form, cid = rec[0] & 0xF0, rec[0] & 0x0F
    if form not in RECORD_FORMS or cid not in (1, 2):
        raise IntegrityError("not a record")
    k = record_key(RECORD_FORMS[form], cid, data_key, store_id, namespace)
    return open_(cid, k, rec[4:16], rec[:16] + ad, rec[16:])


def check_records(path):
    """Every record vector, rebuilt and opened; relabelled ones refused."""
    errs = []
    count = 0
    with open(path, "r", encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    for b in blocks:
        r = dict(line.split(" = ", 1) for line in b.splitlines()
                 if line and not line.startswith("#") and " = " in line)
        if "record" not in r:
            continue
        count += 1
        v, cid = int(r["version"]), CIPHER_IDS[r["cipher"]]
        dk, sid = bytes.fromhex(r["data_key"]), bytes.fromhex(r["store_id"])
        ns, ad = r["namespace"].encode(), bytes.fromhex(r["ad"])
        pt, rec = bytes.fromhex(r["plaintext"]), bytes.fromhex(r["record"])
        built = seal_record(v, cid, int(r["data_key_id"]), dk, sid, ns,
                            rec[4:16], ad, pt)
        if built != rec:
            errs.append("record v%d %s %d: rebuilt differs" % (v, r["cipher"], len(pt)))
        try:
            if open_record(rec, dk, sid, ns, ad) != pt:
                errs.append("record v%d: opened differs" % v)
        except IntegrityError as e:
            errs.append("record v%d: %s" % (v, e))
        for form in (0xB0, 0xC0):
            for c in (1, 2):
                if form | c == rec[0]:
                    continue
                bad = bytes([form | c]) + rec[1:]
                try:
                    open_record(bad, dk, sid, ns, ad)
                    errs.append("relabelled record %02x accepted" % bad[0])
                except IntegrityError:
                    pass
    if count != 12:
        errs.append("%d record vectors, expected 12" % count)
    return errs


# Authentic but malformed: sealed with the right key, refused by the rules.
BAD_METADATA = {
    "trailing byte": b"\x00\x00\xff",
    "empty key": b"\x01\x00\x00\x00\x01\x00\x00\x00v",
    "NUL in key": b"\x01\x00\x02\x00k\x00\x01\x00\x00\x00v",
    "NUL in value": b"\x01\x00\x01\x00k\x02\x00\x00\x00v\x00",
    "count larger than entries": b"\x02\x00\x01\x00k\x01\x00\x00\x00v",
    "no count": b"\x00",
}


def crafted_test():
    """Objects a conforming writer never makes must be refused."""
    errs = []
    dk, salt, sid = os.urandom(32), os.urandom(32), os.urandom(16)
    S = 1024
    for why, md in sorted(BAD_METADATA.items()):
        obj = write_segments(1, S, dk, salt, sid, b"", b"n", md, [b"x"])
        try:
            read_object(obj, dk, sid, b"", b"n")
            errs.append("metadata with %s accepted" % why)
        except IntegrityError:
            pass
    # cipher 3: a segment before the last that opens short, yet has the
    # length of a full one (S - 5 bytes pad to S)
    for segs in ([b"a" * (S - 5), b"b" * 100],
                 [b"a" * S, b"b" * (S - 15), b"c" * S, b"d" * 9]):
        obj = write_segments(3, S, dk, salt, sid, b"", b"n", b"\x00\x00", segs)
        try:
            read_object(obj, dk, sid, b"", b"n")
            errs.append("short cipher-3 segment accepted (%d segments)"
                        % len(segs))
        except IntegrityError:
            pass
    return errs


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    path = argv[1] if len(argv) > 1 else os.path.join(here, "objects.txt")
    records = parse_vectors(path)
    passed = failed = 0
    for r in records:
        errs = check_record(r)
        if errs:
            failed += 1
            print("FAIL %s %d" % (r["cipher"], len(r["plaintext"])))
            for e in errs:
                print("    " + e)
        else:
            passed += 1
            print("ok %s %d" % (r["cipher"], len(r["plaintext"])))
    errs = self_test() + crafted_test()
    errs += check_records(os.path.join(here, "records.txt"))
    if errs:
        failed += 1
        print("FAIL self-test")
        for e in errs:
            print("    " + e)
    else:
        passed += 1
        print("ok self-test round trips, crafted objects, record vectors")
    if not records:
        failed += 1
        print("FAIL no records in %s" % path)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
