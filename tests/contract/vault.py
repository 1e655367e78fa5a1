#!/usr/bin/python3
"""Contract server for HashiCorp Vault's Transit secrets engine and the
token and AppRole auth methods, written from Vault's published HTTP API
documentation.

It checks what Vault checks: the X-Vault-Token (known, unexpired, in the
request's namespace from X-Vault-Namespace) and its policies ("update" on
MOUNT/encrypt/NAME, .../decrypt/..., .../rewrap/...); AppRole logins
(role_id and secret_id); token lookup and renewal (renewable tokens, their
TTL); Transit's request fields (base64 plaintext, "vault:vN:" ciphertexts,
context for derived keys, which are derived with HKDF-SHA256 from the
context, so a wrong context fails to decrypt); key versions (rotation,
min_decryption_version); and answers with Vault's shapes ({"data": ...},
{"auth": ...}, {"errors": [...]}).  Also listens on plain HTTP for
vault+http:// tests.
"""

import base64
import hmac
import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402
from contract import Reply  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402

CT_RE = re.compile(r"^vault:v(\d+):([A-Za-z0-9+/=]+)$")


class VaultError(Exception):
    def __init__(self, status, *errors):
        super().__init__(errors[0] if errors else "")
        self.status, self.errors = status, list(errors)


def denied():
    return VaultError(403, "permission denied")


class Vault(contract.Service):
    name = "vault"

    def __init__(self, args):
        super().__init__(args)
        cfg = contract.load_config(args)
        self.policies = cfg["policies"]  # name -> {path: [capabilities]}
        self.tokens = {}
        for tok, t in cfg.get("tokens", {}).items():
            self.record_secret(tok)
            self.add_token(tok, t["policies"], t.get("ttl", 0), t.get("renewable", False),
                           t.get("namespace", ""))
        self.roles = cfg.get("approle", {})  # role_id -> {secret_id, policies, ttl, ...}
        for r in self.roles.values():
            self.record_secret(r["secret_id"])
        self.keys = {}
        for path, k in cfg["keys"].items():  # "ns|mount/name" or "mount/name"
            self.keys[path] = {"versions": [os.urandom(32)], "derived": k.get("derived", False),
                               "min_decryption_version": 1}

    def add_token(self, tok, policies, ttl, renewable, namespace):
        self.tokens[tok] = {"policies": policies, "ttl": ttl, "renewable": renewable,
                            "namespace": namespace,
                            "expires": time.time() + ttl if ttl else None}

    def faults_apply(self, op):
        return op.startswith("transit:")

    def throttle_reply(self):
        return Reply(429, {"errors": ["request path \"transit\": rate limit quota exceeded"]})

    def fail_reply(self, status):
        return Reply(status, {"errors": ["Vault is sealed"]})

    def control(self, cmd, a):
        if cmd == "expire_tokens":
            for t in self.tokens.values():
                t["expires"] = time.time() - 1
            return {}
        if cmd == "rotate":
            k = self.keys[a["key"]]
            k["versions"].append(os.urandom(32))
            return {"latest_version": len(k["versions"])}
        if cmd == "min_decryption_version":
            self.keys[a["key"]]["min_decryption_version"] = int(a["version"])
            return {}
        if cmd == "token_ttl":
            return {t: v["expires"] - time.time() if v["expires"] else 0
                    for t, v in self.tokens.items()}
        return super().control(cmd, a)

    def handle(self, req):
        path = req.path.split("?")[0]
        if not path.startswith("/v1/"):
            return "?", Reply(404, {"errors": []})
        path = path[4:]
        ns = (req.headers.get("X-Vault-Namespace") or "").strip("/")
        return self.serve(self.op_name(path), lambda: Reply(200, self.route(req, path, ns)),
                          VaultError, lambda e: Reply(e.status, {"errors": e.errors}))

    @staticmethod
    def op_name(path):
        m = re.match(r"^(.*)/(encrypt|decrypt|rewrap)/[^/]+$", path)
        if m:
            return "transit:" + m.group(2)
        if path.endswith("/login"):
            return "auth:login"
        return "auth:" + path.rsplit("/", 1)[-1]

    def route(self, req, path, ns):
        body = {}
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                raise VaultError(400, "failed to parse JSON input")
        if req.method in ("POST", "PUT") and path.endswith("/login"):
            return self.login(body, ns)
        tok = self.token(req, ns)
        if path == "auth/token/lookup-self" and req.method == "GET":
            t = self.tokens[tok]
            return {"data": {"ttl": int(t["expires"] - time.time()) if t["expires"] else 0,
                             "renewable": t["renewable"], "policies": t["policies"]}}
        if path == "auth/token/renew-self" and req.method in ("POST", "PUT"):
            t = self.tokens[tok]
            if not t["renewable"]:
                raise VaultError(400, "lease is not renewable")
            t["expires"] = time.time() + t["ttl"]
            return {"auth": {"client_token": tok, "policies": t["policies"],
                             "lease_duration": t["ttl"], "renewable": True}}
        m = re.match(r"^(.+)/(encrypt|decrypt|rewrap)/([^/]+)$", path)
        if not m or req.method not in ("POST", "PUT"):
            raise VaultError(404, "unsupported path")
        mount, op, name = m.groups()
        self.allowed(tok, "%s/%s/%s" % (mount, op, name))
        key = self.keys.get(("%s|" % ns if ns else "") + mount + "/" + name)
        if key is None:
            raise VaultError(400, "encryption key not found")
        return {"data": getattr(self, op)(key, body, "%s/%s" % (mount, name))}

    def login(self, body, ns):
        r = self.roles.get(body.get("role_id", ""))
        if not r or not hmac.compare_digest(r["secret_id"], str(body.get("secret_id", ""))) \
                or r.get("namespace", "") != ns:
            raise VaultError(400, "invalid role or secret ID")
        tok = self.issue(24, "hvs.")
        self.add_token(tok, r["policies"], r.get("ttl", 3600), r.get("renewable", True), ns)
        return {"auth": {"client_token": tok, "accessor": str(uuid.uuid4()),
                         "policies": r["policies"], "token_policies": r["policies"],
                         "lease_duration": r.get("ttl", 3600),
                         "renewable": r.get("renewable", True)}}

    def token(self, req, ns):
        tok = req.headers.get("X-Vault-Token") or ""
        t = self.tokens.get(tok)
        if not t or t["namespace"] != ns or (t["expires"] and t["expires"] < time.time()):
            raise denied()
        return tok

    def allowed(self, tok, path):
        for p in self.tokens[tok]["policies"]:
            if p == "root" or "update" in self.policies.get(p, {}).get(path, []):
                return
        raise denied()

    # -- transit
    @staticmethod
    def b64(body, field, required=True):
        if field not in body:
            if required:
                raise VaultError(400, "missing %s to %s" % (field, "process"))
            return None
        try:
            return base64.b64decode(body[field], validate=True)
        except (ValueError, TypeError):
            raise VaultError(400, "failed to base64-decode %s" % field)

    def derive(self, key, ver, body):
        ctx = self.b64(body, "context", required=False)
        k = key["versions"][ver - 1]
        if not key["derived"]:
            return k
        if not ctx:
            raise VaultError(400, "missing 'context' for key derivation; the key was "
                             "created using a derived key, which means additional, "
                             "per-request information must be included in order to "
                             "perform operations with the key")
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ctx).derive(k)

    def seal(self, key, body):
        ver = len(key["versions"])
        pt = self.b64(body, "plaintext")
        nonce = os.urandom(12)
        ct = AESGCM(self.derive(key, ver, body)).encrypt(nonce, pt, None)
        return "vault:v%d:%s" % (ver, base64.b64encode(nonce + ct).decode()), ver

    def open(self, key, body):
        m = CT_RE.match(str(body.get("ciphertext", "")))
        if not m:
            raise VaultError(400, "invalid ciphertext: no prefix")
        ver = int(m.group(1))
        if ver > len(key["versions"]):
            raise VaultError(400, "invalid ciphertext: version is too new")
        if ver < key["min_decryption_version"]:
            raise VaultError(400, "ciphertext or signature version is disallowed by policy "
                             "(too old)")
        raw = base64.b64decode(m.group(2))
        try:
            return AESGCM(self.derive(key, ver, body)).decrypt(raw[:12], raw[12:], None), ver
        except VaultError:
            raise
        except Exception:
            raise VaultError(400, "cipher: message authentication failed")

    def encrypt(self, key, body, path):
        ct, ver = self.seal(key, body)
        self.last["encrypt"] = {"key": path, "version": ver, "context": body.get("context")}
        return {"ciphertext": ct, "key_version": ver}

    def decrypt(self, key, body, path):
        pt, ver = self.open(key, body)
        self.last["decrypt"] = {"key": path, "version": ver, "context": body.get("context")}
        return {"plaintext": base64.b64encode(pt).decode()}

    def rewrap(self, key, body, path):
        pt, old = self.open(key, body)
        ct, ver = self.seal(key, dict(body, plaintext=base64.b64encode(pt).decode()))
        self.last["rewrap"] = {"key": path, "from": old, "version": ver}
        return {"ciphertext": ct, "key_version": ver}


def main():
    args = contract.arg_parser(__doc__.splitlines()[0]).parse_args()
    contract.App(Vault(args), plain_extra=["plain"]).run()


if __name__ == "__main__":
    main()
