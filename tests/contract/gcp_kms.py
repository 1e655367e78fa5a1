#!/usr/bin/python3
"""Contract server for Google Cloud KMS (REST v1 :encrypt and :decrypt),
Google's OAuth 2.0 token endpoint and the GCE metadata server, written
from Google's published API reference.

It checks what Google checks: at the token endpoint, the RS256 JWT
assertion (python3-jwt, verified with the service account's public key and
the key id in its header), its issuer, audience (the token URI), scope and
times, or a refresh token with its client id and secret; at Cloud KMS, the
bearer token (known, unexpired, for this scope), the caller's permission on
the key, the request JSON (only the documented fields, base64, CRC32C
integrity fields), and on decrypt the additionalAuthenticatedData (AES-GCM
over it).  Errors have Google's shape ({"error": {"code", "message",
"status"}}).  The metadata server (plain HTTP) requires
Metadata-Flavor: Google and answers with it.
"""

import base64
import hmac
import json
import os
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402
from contract import Reply  # noqa: E402

import jwt  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

SCOPES = ("https://www.googleapis.com/auth/cloudkms",
          "https://www.googleapis.com/auth/cloud-platform")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FIELDS = {
    "encrypt": {"plaintext", "additionalAuthenticatedData", "plaintextCrc32c",
                "additionalAuthenticatedDataCrc32c"},
    "decrypt": {"ciphertext", "additionalAuthenticatedData", "ciphertextCrc32c",
                "additionalAuthenticatedDataCrc32c"},
}


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


class GError(Exception):
    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def gerror(e):
    return Reply(e.code, {"error": {"code": e.code, "message": e.message,
                                    "status": e.status}})


def oauth_error(error, desc, status=400):
    return Reply(status, {"error": error, "error_description": desc})


class Gcp(contract.Service):
    name = "gcp-kms"

    def __init__(self, args):
        super().__init__(args)
        cfg = contract.load_config(args)
        self.accounts = cfg.get("service_accounts", {})  # email -> {public_key, key_id}
        self.users = cfg.get("authorized_users", {})  # client_id -> {secret, refresh, email}
        for u in self.users.values():
            self.record_secret(u["secret"])
            self.record_secret(u["refresh_token"])
        self.meta_email = cfg.get("metadata_email")
        self.lifetime = int(cfg.get("token_lifetime", 3600))
        self.keys = {}
        for name, k in cfg["keys"].items():
            self.keys[name] = {"versions": [os.urandom(32)], "enabled": [True],
                               "allow": set(k.get("allow", []))}
        self.tokens = {}  # access token -> (email, expiry)

    def faults_apply(self, op):
        return op.startswith("kms:")

    def throttle_reply(self):
        return gerror(GError(429, "RESOURCE_EXHAUSTED",
                             "Quota exceeded for quota metric 'Cryptographic requests'"))

    def fail_reply(self, status):
        return gerror(GError(status, "UNAVAILABLE", "The service is currently unavailable."))

    def control(self, cmd, a):
        if cmd == "revoke_tokens":
            self.tokens.clear()
            return {}
        if cmd == "rotate":
            k = self.keys[a["key"]]
            k["versions"].append(os.urandom(32))
            k["enabled"].append(True)
            return {"primary": len(k["versions"])}
        if cmd in ("disable_version", "enable_version"):
            self.keys[a["key"]]["enabled"][int(a["version"]) - 1] = cmd == "enable_version"
            return {}
        if cmd in ("revoke", "grant"):
            allow = self.keys[a["key"]]["allow"]
            (allow.discard if cmd == "revoke" else allow.add)(a["email"])
            return {}
        return super().control(cmd, a)

    def handle(self, req):
        path = urllib.parse.urlsplit(req.path).path
        if req.kind == "meta":
            return self.metadata(req, path)
        if path == "/token":
            self.count("oauth:token")
            return "oauth:token", self.token(req)
        name, _, verb = path.rpartition(":")
        return self.serve("kms:" + verb, lambda: Reply(200, self.kms(req, name, verb)),
                          GError, gerror)

    # -- tokens
    def new_token(self, email):
        tok = self.issue(40, "ya29.")
        self.tokens[tok] = (email, time.time() + self.lifetime)
        return Reply(200, {"access_token": tok, "expires_in": self.lifetime,
                           "token_type": "Bearer"})

    def token(self, req):
        if req.method != "POST" or not (req.headers.get("Content-Type") or "").startswith(
                "application/x-www-form-urlencoded"):
            return oauth_error("invalid_request", "expected a form POST")
        form = urllib.parse.parse_qs(req.body.decode(), keep_blank_values=True)
        one = {k: v[0] for k, v in form.items() if len(v) == 1}
        grant = one.get("grant_type")
        if grant == JWT_BEARER:
            return self.jwt_grant(one.get("assertion", ""))
        if grant == "refresh_token":
            u = self.users.get(one.get("client_id", ""))
            if not u or not hmac.compare_digest(u["secret"], one.get("client_secret", "")):
                return oauth_error("invalid_client", "The OAuth client was not found.", 401)
            if not hmac.compare_digest(u["refresh_token"], one.get("refresh_token", "")):
                return oauth_error("invalid_grant", "Bad Request")
            return self.new_token(u["email"])
        return oauth_error("unsupported_grant_type", "Invalid grant_type")

    def jwt_grant(self, assertion):
        try:
            header = jwt.get_unverified_header(assertion)
            iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "Invalid JWT")
        acct = self.accounts.get(iss)
        if not acct:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        if header.get("alg") != "RS256" or header.get("kid") != acct["key_id"]:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        token_uri = "https://127.0.0.1:%d/token" % self.port
        try:
            claims = jwt.decode(assertion, acct["public_key"], algorithms=["RS256"],
                                audience=token_uri, leeway=60,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.InvalidSignatureError:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        except jwt.PyJWTError as e:
            return oauth_error("invalid_grant", "Invalid JWT: %s" % e.__class__.__name__)
        if claims["exp"] - claims["iat"] > 3600 or claims["iat"] > time.time() + 60:
            return oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived "
                               "token (60 minutes) and in a reasonable timeframe.")
        if not set(str(claims.get("scope", "")).split()) & set(SCOPES):
            return oauth_error("invalid_scope", "no Cloud KMS scope")
        return self.new_token(iss)

    def metadata(self, req, path):
        op = "metadata:token"
        self.count(op)
        if path != "/computeMetadata/v1/instance/service-accounts/default/token":
            return op, Reply(404, "Not Found", ctype="text/html")
        if req.headers.get("Metadata-Flavor") != "Google":
            return op, Reply(403, "Missing Metadata-Flavor:Google header.",
                             ctype="text/html")
        r = self.new_token(self.meta_email)
        r.headers["Metadata-Flavor"] = "Google"
        return op, r

    # -- Cloud KMS
    def caller(self, req):
        tok = req.bearer()
        ent = self.tokens.get(tok or "")
        if not ent or ent[1] < time.time():
            raise GError(401, "UNAUTHENTICATED",
                         "Request had invalid authentication credentials. Expected OAuth "
                         "2 access token, login cookie or other valid authentication "
                         "credential.")
        return ent[0]

    def parse(self, req, verb):
        if (req.headers.get("Content-Type") or "").split(";")[0] != "application/json":
            raise GError(400, "INVALID_ARGUMENT", "expected application/json")
        try:
            body = json.loads(req.body)
        except ValueError:
            raise GError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            raise GError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        for k in body:
            if k not in FIELDS[verb]:
                raise GError(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. '
                             'Unknown name "%s": Cannot find field.' % k)
        out = {}
        for field in ("plaintext", "ciphertext", "additionalAuthenticatedData"):
            if field in body:
                try:
                    out[field] = base64.b64decode(body[field], validate=True)
                except (ValueError, TypeError):
                    raise GError(400, "INVALID_ARGUMENT", "Invalid value at '%s'" % field)
                crc = body.get(field + "Crc32c")
                if crc is not None and int(crc) != crc32c(out[field]):
                    raise GError(400, "INVALID_ARGUMENT",
                                 "The checksum in field %s_crc32c did not match the data "
                                 "in field %s." % (field, field))
        need = "plaintext" if verb == "encrypt" else "ciphertext"
        if need not in out:
            raise GError(400, "INVALID_ARGUMENT", "%s is required" % need)
        if len(out[need]) > 65536 or len(out.get("additionalAuthenticatedData", b"")) > 65536:
            raise GError(400, "INVALID_ARGUMENT", "too large")
        return body, out

    def kms(self, req, name, verb):
        if req.method != "POST" or verb not in FIELDS or not name.startswith("/v1/"):
            raise GError(404, "NOT_FOUND", "Method not found.")
        name = name[4:]
        who = self.caller(req)
        body, p = self.parse(req, verb)
        k = self.keys.get(name)
        if k is None:
            raise GError(404, "NOT_FOUND", "CryptoKey %s not found." % name)
        perm = "useToEncrypt" if verb == "encrypt" else "useToDecrypt"
        if who not in k["allow"]:
            raise GError(403, "PERMISSION_DENIED",
                         "Permission 'cloudkms.cryptoKeyVersions.%s' denied on resource "
                         "'%s' (or it may not exist)." % (perm, name))
        aad = p.get("additionalAuthenticatedData", b"")
        self.last[verb] = {"aad": base64.b64encode(aad).decode(), "caller": who}
        if verb == "encrypt":
            ver = len(k["versions"])
            if not k["enabled"][ver - 1]:
                raise GError(400, "FAILED_PRECONDITION",
                             "The primary version of %s is not enabled." % name)
            nonce = os.urandom(12)
            ct = struct.pack(">I", ver) + nonce + AESGCM(k["versions"][ver - 1]).encrypt(
                nonce, p["plaintext"], aad)
            return {"name": "%s/cryptoKeyVersions/%d" % (name, ver),
                    "ciphertext": base64.b64encode(ct).decode(),
                    "ciphertextCrc32c": str(crc32c(ct)),
                    "verifiedPlaintextCrc32c": "plaintextCrc32c" in body,
                    "verifiedAdditionalAuthenticatedDataCrc32c":
                        "additionalAuthenticatedDataCrc32c" in body,
                    "protectionLevel": "SOFTWARE"}
        ct = p["ciphertext"]
        bad = GError(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
        if len(ct) < 4 + 12 + 16:
            raise bad
        ver = struct.unpack(">I", ct[:4])[0]
        if not 1 <= ver <= len(k["versions"]):
            raise bad
        if not k["enabled"][ver - 1]:
            raise GError(400, "FAILED_PRECONDITION",
                         "%s/cryptoKeyVersions/%d is not enabled." % (name, ver))
        try:
            pt = AESGCM(k["versions"][ver - 1]).decrypt(ct[4:16], ct[16:], aad)
        except Exception:
            raise bad
        return {"plaintext": base64.b64encode(pt).decode(), "plaintextCrc32c": str(crc32c(pt)),
                "usedPrimary": ver == len(k["versions"]), "protectionLevel": "SOFTWARE"}


def main():
    args = contract.arg_parser(__doc__.splitlines()[0]).parse_args()
    svc = Gcp(args)
    contract.App(svc, plain_extra=["meta"]).run()


if __name__ == "__main__":
    main()
