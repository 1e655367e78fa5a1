#!/usr/bin/python3
"""Contract server for Azure Key Vault (keys/{name}/{version}/wrapkey and
unwrapkey), the Microsoft identity platform's token endpoint
(AUTHORITY/TENANT/oauth2/v2.0/token, client credentials) and the managed
identity endpoints (instance metadata and App Service), written from
Microsoft's published REST API reference.

It checks what Azure checks: at the token endpoint, the tenant, client id
and client secret, or a federated client assertion (a JWT verified with the
issuer's public key, its subject and audience), and the scope; at Key
Vault, the api-version, the bearer token (an RS256 JWT this server issued:
signature, audience https://vault.azure.net, expiry, tenant), the caller's
permission on the key, the key version and whether it is enabled, and the
algorithm for the key type.  Wrapping is real: RSA-OAEP-256 with 2048-bit
RSA keys and AES key wrap (A256KW) with 256-bit keys (python3-cryptography).
Errors have Azure's shapes ({"error": {"code", "message", "innererror"}},
AADSTS codes at the token endpoint).
"""

import base64
import hmac
import json
import os
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402
from contract import Reply  # noqa: E402

import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.keywrap import (  # noqa: E402
    InvalidUnwrap, aes_key_unwrap, aes_key_wrap)

RESOURCE = "https://vault.azure.net"
API_VERSIONS = {"7.0", "7.1", "7.2", "7.3", "7.4", "7.5"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OAEP256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                       label=None)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class KvError(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.inner, self.headers = inner, headers or {}


def kv_error(e):
    err = {"code": e.code, "message": e.message}
    if e.inner:
        err["innererror"] = {"code": e.inner}
    return Reply(e.status, {"error": err}, e.headers)


def aad_error(error, code, desc, status=400):
    return Reply(status, {"error": error, "error_description": "%s: %s" % (code, desc),
                          "error_codes": [int(code[6:])]})


class Azure(contract.Service):
    name = "azure-kv"

    def __init__(self, args):
        super().__init__(args)
        cfg = contract.load_config(args)
        self.tenant = cfg["tenant"]
        self.clients = cfg["clients"]  # client_id -> {secret?, federated?: {issuer, subject, public_key}}
        for c in self.clients.values():
            if "secret" in c:
                self.record_secret(c["secret"])
        self.managed = cfg.get("managed_identity", {})  # {client_id, identity_header}
        self.lifetime = int(cfg.get("token_lifetime", 3600))
        self.signer = rsa.generate_private_key(65537, 2048)
        self.keys = {}
        for name, k in cfg["keys"].items():
            self.keys[name] = {"kty": k.get("kty", "RSA"), "versions": [],
                               "allow": {c: set(ops) for c, ops in k["allow"].items()}}
            self.new_version(name)
        self.issued = 0  # tokens issued so far (their "seq" claim)
        self.expired_upto = 0  # tokens with seq up to this one are expired

    def new_version(self, name):
        k = self.keys[name]
        ver = uuid.uuid4().hex
        mat = (rsa.generate_private_key(65537, 2048) if k["kty"] == "RSA"
               else os.urandom(32))
        k["versions"].append({"id": ver, "key": mat, "enabled": True})
        return ver

    def faults_apply(self, op):
        return op.startswith("kv:")

    def throttle_reply(self):
        return kv_error(KvError(429, "Throttled", "Request was not processed because too "
                                "many requests were received. Reason: "
                                "VaultRequestTypeLimitReached", headers={"Retry-After": "1"}))

    def fail_reply(self, status):
        return kv_error(KvError(status, "ServiceUnavailable", "The service is unavailable."))

    def control(self, cmd, a):
        if cmd == "expire_tokens":
            self.expired_upto = self.issued
            return {}
        if cmd == "rotate":
            return {"version": self.new_version(a["key"])}
        if cmd in ("disable_version", "enable_version"):
            for v in self.keys[a["key"]]["versions"]:
                if v["id"] == a["version"]:
                    v["enabled"] = cmd == "enable_version"
            return {}
        if cmd == "versions":
            return [v["id"] for v in self.keys[a["key"]]["versions"]]
        if cmd in ("revoke", "grant"):
            ops = self.keys[a["key"]]["allow"].setdefault(a["client"], set())
            (ops.discard if cmd == "revoke" else ops.add)(a["op"])
            return {}
        return super().control(cmd, a)

    def handle(self, req):
        url = urllib.parse.urlsplit(req.path)
        query = urllib.parse.parse_qs(url.query)
        if req.kind == "meta":
            return self.managed_identity(req, url.path, query)
        if url.path.endswith("/oauth2/v2.0/token"):
            self.count("aad:token")
            return "aad:token", self.token(req, url.path)
        parts = url.path.strip("/").split("/")
        return self.serve("kv:" + (parts[-1] if parts else "?"),
                          lambda: Reply(200, self.keyvault(req, parts, query)), KvError, kv_error)

    # -- tokens
    def issue_token(self, client):
        now = int(time.time())
        self.issued += 1
        tok = jwt.encode({"aud": RESOURCE, "iss": "https://sts.windows.net/%s/" % self.tenant,
                          "tid": self.tenant, "appid": client, "oid": client,
                          "iat": now, "nbf": now, "exp": now + self.lifetime,
                          "seq": self.issued},
                         self.signer, algorithm="RS256")
        self.record_secret(tok)
        return {"token_type": "Bearer", "expires_in": self.lifetime,
                "ext_expires_in": self.lifetime, "access_token": tok}

    def token(self, req, path):
        tenant = path.split("/")[1]
        form = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode()).items()}
        if tenant != self.tenant:
            return aad_error("invalid_request", "AADSTS90002",
                             "Tenant '%s' not found." % tenant)
        if form.get("grant_type") != "client_credentials":
            return aad_error("unsupported_grant_type", "AADSTS70003", "unsupported grant")
        c = self.clients.get(form.get("client_id", ""))
        if c is None:
            return aad_error("unauthorized_client", "AADSTS700016",
                             "Application with identifier '%s' was not found in the "
                             "directory." % form.get("client_id"))
        if form.get("scope") != RESOURCE + "/.default":
            return aad_error("invalid_scope", "AADSTS70011", "The provided value for scope "
                             "is not valid.")
        if "client_secret" in form:
            if "secret" not in c or not hmac.compare_digest(c["secret"], form["client_secret"]):
                return aad_error("invalid_client", "AADSTS7000215",
                                 "Invalid client secret provided.", 401)
        elif form.get("client_assertion_type") == ASSERTION_TYPE and "federated" in c:
            fed = c["federated"]
            try:
                claims = jwt.decode(form.get("client_assertion", ""), fed["public_key"],
                                    algorithms=["RS256"], audience="api://AzureADTokenExchange",
                                    issuer=fed["issuer"], options={"require": ["exp", "sub"]})
            except jwt.PyJWTError:
                return aad_error("invalid_client", "AADSTS700211",
                                 "No matching federated identity record found for presented "
                                 "assertion.", 401)
            if claims["sub"] != fed["subject"]:
                return aad_error("invalid_client", "AADSTS70021",
                                 "No matching federated identity record found.", 401)
        else:
            return aad_error("invalid_client", "AADSTS7000216",
                             "'client_assertion', 'client_secret' or 'request' is required.",
                             401)
        return Reply(200, self.issue_token(form["client_id"]))

    def managed_identity(self, req, path, query):
        op = "msi:token"
        self.count(op)
        res = (query.get("resource") or [""])[0]
        if path == "/metadata/identity/oauth2/token":
            if req.headers.get("Metadata") != "true":
                return op, Reply(400, {"error": "invalid_request",
                                       "error_description": "Required metadata header not specified"})
            if (query.get("api-version") or [""])[0] != "2018-02-01":
                return op, Reply(400, {"error": "invalid_request",
                                       "error_description": "bad api-version"})
        elif path == "/msi/token":
            if not hmac.compare_digest(req.headers.get("X-IDENTITY-HEADER") or "",
                                       self.managed.get("identity_header", "")):
                return op, Reply(401, {"error": "unauthorized"})
        else:
            return op, Reply(404, "")
        if res != RESOURCE:
            return op, Reply(400, {"error": "invalid_resource",
                                   "error_description": "AADSTS500011: resource not found"})
        t = self.issue_token(self.managed["client_id"])
        t["expires_in"] = str(t["expires_in"])  # a string, as the real endpoints send
        t["resource"] = res
        return op, Reply(200, t)

    # -- Key Vault
    def caller(self, req):
        challenge = {"WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline'
                     '.com/%s", resource="%s"' % (self.tenant, RESOURCE)}
        tok = req.bearer()
        if not tok:
            raise KvError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP "
                          "token.", headers=challenge)
        try:
            claims = jwt.decode(tok, self.signer.public_key(), algorithms=["RS256"],
                                audience=RESOURCE, options={"require": ["exp", "tid"]})
        except jwt.ExpiredSignatureError:
            raise KvError(401, "Unauthorized", "AKV10022: Invalid audience or token expired.",
                          headers=challenge)
        except jwt.PyJWTError:
            raise KvError(401, "Unauthorized", "AKV10032: Invalid issuer or signature.",
                          headers=challenge)
        if claims["tid"] != self.tenant or claims.get("seq", 0) <= self.expired_upto:
            raise KvError(401, "Unauthorized", "AKV10022: Invalid audience or token expired.",
                          headers=challenge)
        return claims["appid"]

    def keyvault(self, req, parts, query):
        ver = (query.get("api-version") or [""])[0]
        if ver not in API_VERSIONS:
            raise KvError(400, "BadParameter", "The specified version (%s) is not recognized. "
                          "Consider using the latest supported version." % ver)
        client = self.caller(req)
        if req.method != "POST" or len(parts) not in (3, 4) or parts[0] != "keys" or \
                parts[-1] not in ("wrapkey", "unwrapkey"):
            raise KvError(404, "NotFound", "unknown operation")
        name, op = parts[1], parts[-1]
        k = self.keys.get(name)
        if k is None:
            raise KvError(404, "KeyNotFound", "A key with (name/id) %s was not found in this "
                          "key vault." % name)
        perm = "wrapKey" if op == "wrapkey" else "unwrapKey"
        if perm not in k["allow"].get(client, ()):
            raise KvError(403, "Forbidden", "The user, group or application 'appid=%s' does "
                          "not have keys %s permission on key vault." % (client, perm),
                          "AccessDenied")
        if len(parts) == 4:
            v = [x for x in k["versions"] if x["id"] == parts[2]]
            if not v:
                raise KvError(404, "KeyNotFound", "A key with (name/id) %s/%s was not found "
                              "in this key vault." % (name, parts[2]))
            v = v[0]
        elif op == "wrapkey":
            v = k["versions"][-1]
        else:
            raise KvError(400, "BadParameter", "unwrapkey needs a key version")
        if not v["enabled"]:
            raise KvError(403, "Forbidden", "Operation %s is not allowed on a disabled key."
                          % perm, "KeyDisabled")
        try:
            body = json.loads(req.body)
            alg, value = body["alg"], unb64u(body["value"])
            if set(body) != {"alg", "value"}:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise KvError(400, "BadParameter", "Property 'alg' and 'value' are required.")
        want = "RSA-OAEP-256" if k["kty"] == "RSA" else "A256KW"
        if alg != want:
            raise KvError(400, "BadParameter", "Invalid algorithm %s for key type %s"
                          % (alg, k["kty"]))
        self.last[op] = {"version": v["id"], "alg": alg}
        kid = "https://127.0.0.1:%d/keys/%s/%s" % (self.port, name, v["id"])
        try:
            if op == "wrapkey":
                out = (v["key"].public_key().encrypt(value, OAEP256) if k["kty"] == "RSA"
                       else aes_key_wrap(v["key"], value))
            else:
                out = (v["key"].decrypt(value, OAEP256) if k["kty"] == "RSA"
                       else aes_key_unwrap(v["key"], value))
        except (ValueError, InvalidUnwrap):
            raise KvError(400, "BadParameter", "Unwrap failed: the value does not decrypt "
                          "with this key.")
        return {"kid": kid, "value": b64u(out)}


def main():
    args = contract.arg_parser(__doc__.splitlines()[0]).parse_args()
    contract.App(Azure(args), plain_extra=["meta"]).run()


if __name__ == "__main__":
    main()
