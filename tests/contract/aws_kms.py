#!/usr/bin/python3
"""Contract server for AWS KMS (JSON 1.1 protocol, TrentService) and the
AWS credential services (EC2 instance metadata IMDSv2, container
credentials), written from AWS's published API reference.

It checks what KMS checks: the SigV4 signature, recomputed by botocore's
own signer (botocore.auth.SigV4Auth over an AWSRequest rebuilt from the
signed headers) with the caller's secret key; the credential scope (date,
region, "kms"); the clock skew; session tokens and their expiry; the
X-Amz-Target operation and the request JSON against botocore's KMS service
model (botocore/data/kms/2014-11-01/service-2.json, validated by botocore's
ParamValidator); key ids, ARNs and aliases; per-user permissions; disabled
keys; and on Decrypt the exact EncryptionContext (AES-GCM over it).  Errors
have KMS's shapes ({"__type": ..., "message": ...}).

Also serves, on a plain-HTTP port, IMDSv2 (token first) and container
credentials, handing out temporary keys that KMS then accepts.
"""

import base64
import calendar
import hmac
import json
import os
import struct
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402
from contract import Reply  # noqa: E402

import botocore.loaders  # noqa: E402
import botocore.model  # noqa: E402
import botocore.validate  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

AMZ_JSON = "application/x-amz-json-1.1"
MAGIC = b"\x01KMS"
SKEW = 300


class KmsError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def kms_reply(status, body):
    return Reply(status, json.dumps(body).encode(), {
        "Content-Type": AMZ_JSON, "x-amzn-RequestId": str(uuid.uuid4())})


def error_reply(e):
    return kms_reply(e.status, {"__type": e.code, "message": e.message})


def parse_authorization(value):
    if not value.startswith("AWS4-HMAC-SHA256 "):
        raise KmsError("IncompleteSignatureException",
                       "Authorization header requires the AWS4-HMAC-SHA256 algorithm")
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        ak, date, region, service, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        sig = fields["Signature"]
    except (KeyError, ValueError):
        raise KmsError("IncompleteSignatureException",
                       "Authorization header requires Credential, SignedHeaders, Signature")
    if term != "aws4_request":
        raise KmsError("IncompleteSignatureException", "Credential must end with aws4_request")
    return ak, date, region, service, signed, sig


class Kms(contract.Service):
    name = "aws-kms"

    def __init__(self, args):
        super().__init__(args)
        cfg = contract.load_config(args)
        self.region = cfg["region"]
        self.account = cfg["account"]
        self.users = {ak: dict(u) for ak, u in cfg["users"].items()}  # static keys
        self.temp = {}  # temporary keys: ak -> {secret, token, expires, name}
        self.keys = {}
        for kid, k in cfg["keys"].items():
            self.keys[kid] = {"versions": [os.urandom(32)], "enabled": True,
                              "aliases": list(k.get("aliases", [])),
                              "allow": {u: set(ops) for u, ops in k.get("allow", {}).items()}}
        self.meta = cfg.get("metadata", {})
        self.imds_tokens = {}
        loader = botocore.loaders.Loader()
        self.model = botocore.model.ServiceModel(
            loader.load_service_model("kms", "service-2"), "kms")
        self.validator = botocore.validate.ParamValidator()
        for u in self.users.values():
            self.record_secret(u["secret"])

    # -- faults, control
    def faults_apply(self, op):
        return op.startswith("kms:")

    def throttle_reply(self):
        return error_reply(KmsError("ThrottlingException", "Rate exceeded"))

    def fail_reply(self, status):
        return error_reply(KmsError("KMSInternalException",
                                    "The request was rejected because an internal "
                                    "exception occurred", status))

    def control(self, cmd, a):
        if cmd == "expire_credentials":
            for t in self.temp.values():
                t["expires"] = time.time() - 1
            return {}
        if cmd == "rotate":
            self.keys[a["key"]]["versions"].append(os.urandom(32))
            return {"versions": len(self.keys[a["key"]]["versions"])}
        if cmd in ("disable", "enable"):
            self.keys[a["key"]]["enabled"] = cmd == "enable"
            return {}
        if cmd in ("revoke", "grant"):
            ops = self.keys[a["key"]]["allow"].setdefault(a["user"], set())
            (ops.discard if cmd == "revoke" else ops.add)(a["op"])
            return {}
        return super().control(cmd, a)

    # -- requests
    def handle(self, req):
        if req.kind == "meta":
            return self.metadata(req)
        target = req.headers.get("X-Amz-Target") or ""
        op = target.split(".", 1)[1] if target.startswith("TrentService.") else target
        return self.serve("kms:" + (op or "?"), lambda: kms_reply(200, self.kms(req, op)),
                          KmsError, error_reply)

    def kms(self, req, op):
        if req.method != "POST" or req.path != "/":
            raise KmsError("UnknownOperationException", "", 404)
        user = self.authenticate(req)
        if op not in ("Encrypt", "Decrypt"):
            raise KmsError("UnknownOperationException", "unknown operation %r" % op)
        if (req.headers.get("Content-Type") or "").split(";")[0].strip() != AMZ_JSON:
            raise KmsError("SerializationException", "Content-Type must be " + AMZ_JSON)
        params = self.parse(op, req.body)
        return getattr(self, op.lower())(user, params)

    def authenticate(self, req):
        auth = req.headers.get("Authorization")
        if not auth:
            raise KmsError("MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        ak, date, region, service, signed, sig = parse_authorization(auth)
        amz_date = req.headers.get("X-Amz-Date") or ""
        for h in ("host", "x-amz-date"):
            if h not in signed:
                raise KmsError("InvalidSignatureException",
                               "'%s' must be a signed header" % h)
        if signed != sorted(signed) or len(set(signed)) != len(signed):
            raise KmsError("InvalidSignatureException", "SignedHeaders must be sorted")
        user, secret, token = self.credential(ak, req)
        if date != amz_date[:8] or region != self.region or service != "kms":
            raise KmsError("InvalidSignatureException",
                           "Credential should be scoped to a valid region and service")
        try:
            t = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise KmsError("IncompleteSignatureException", "X-Amz-Date is malformed")
        if abs(t - time.time()) > SKEW:
            raise KmsError("InvalidSignatureException", "Signature expired")
        headers = {}
        for h in signed:
            values = req.headers.get_all(h)
            if values is None:
                raise KmsError("IncompleteSignatureException",
                               "signed header %s is missing" % h)
            headers[h] = ",".join(values)
        aws = AWSRequest(method=req.method, url="https://%s%s" % (headers["host"], req.path),
                         headers=headers, data=req.body)
        aws.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(ak, secret, token), "kms", self.region)
        expected = signer.signature(
            signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, sig):
            raise KmsError("InvalidSignatureException",
                           "The request signature we calculated does not match the "
                           "signature you provided. Check your AWS Secret Access Key "
                           "and signing method.")
        if token is not None and "x-amz-security-token" not in signed:
            raise KmsError("InvalidSignatureException",
                           "x-amz-security-token must be signed")
        return user

    def credential(self, ak, req):
        if ak in self.users:
            return self.users[ak]["name"], self.users[ak]["secret"], None
        t = self.temp.get(ak)
        if t is None:
            raise KmsError("UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if req.headers.get("X-Amz-Security-Token") != t["token"]:
            raise KmsError("UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if t["expires"] < time.time():
            raise KmsError("ExpiredTokenException",
                           "The security token included in the request is expired")
        return t["name"], t["secret"], t["token"]

    def parse(self, op, body):
        try:
            params = json.loads(body)
        except ValueError:
            raise KmsError("SerializationException", "body is not JSON")
        if not isinstance(params, dict):
            raise KmsError("SerializationException", "body is not a JSON object")
        shape = self.model.operation_model(op).input_shape
        for name, member in shape.members.items():  # blobs travel as base64
            if member.type_name == "blob" and name in params:
                try:
                    params[name] = base64.b64decode(params[name], validate=True)
                except (ValueError, TypeError):
                    raise KmsError("SerializationException", "%s is not base64" % name)
        report = self.validator.validate(params, shape)
        if report.has_errors():
            raise KmsError("ValidationException", report.generate_report())
        return params

    # -- keys
    def arn(self, kid):
        return "arn:aws:kms:%s:%s:key/%s" % (self.region, self.account, kid)

    def resolve(self, ref):
        prefix = "arn:aws:kms:%s:%s:" % (self.region, self.account)
        name = ref[len(prefix):] if ref.startswith(prefix) else ref
        if ref.startswith("arn:") and name == ref:
            raise KmsError("NotFoundException", "Invalid arn %s" % ref)
        if name.startswith("key/"):
            name = name[4:]
        for kid, k in self.keys.items():
            if name == kid or name in k["aliases"]:
                return kid
        raise KmsError("NotFoundException", "Key '%s' does not exist" % ref)

    def usable(self, user, kid, op):
        k = self.keys[kid]
        if op not in k["allow"].get(user, ()):
            raise KmsError("AccessDeniedException",
                           "User: arn:aws:iam::%s:user/%s is not authorized to perform: "
                           "kms:%s on resource: %s because no identity-based policy "
                           "allows the kms:%s action" % (self.account, user, op,
                                                         self.arn(kid), op))
        if not k["enabled"]:
            raise KmsError("DisabledException", "%s is disabled." % self.arn(kid))
        return k

    @staticmethod
    def aad(kid, ctx):
        return (kid + "\n" + json.dumps(ctx or {}, sort_keys=True)).encode()

    def encrypt(self, user, p):
        kid = self.resolve(p["KeyId"])
        k = self.usable(user, kid, "Encrypt")
        ver = len(k["versions"]) - 1
        nonce = os.urandom(12)
        ct = AESGCM(k["versions"][ver]).encrypt(nonce, p["Plaintext"],
                                                 self.aad(kid, p.get("EncryptionContext")))
        self.last["Encrypt"] = {"EncryptionContext": p.get("EncryptionContext"),
                                "KeyId": p["KeyId"]}
        blob = MAGIC + kid.encode() + struct.pack(">I", ver) + nonce + ct
        return {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": self.arn(kid),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def decrypt(self, user, p):
        blob = p["CiphertextBlob"]
        if len(blob) < 4 + 36 + 4 + 12 + 16 or blob[:4] != MAGIC:
            raise KmsError("InvalidCiphertextException", "")
        kid = blob[4:40].decode("ascii", "replace")
        if kid not in self.keys:
            raise KmsError("InvalidCiphertextException", "")
        if "KeyId" in p and self.resolve(p["KeyId"]) != kid:
            raise KmsError("IncorrectKeyException",
                           "The key ID in the request does not identify a KMS key that "
                           "can perform this operation.")
        k = self.usable(user, kid, "Decrypt")
        ver = struct.unpack(">I", blob[40:44])[0]
        self.last["Decrypt"] = {"EncryptionContext": p.get("EncryptionContext"),
                                "KeyId": p.get("KeyId")}
        try:
            pt = AESGCM(k["versions"][ver]).decrypt(
                blob[44:56], blob[56:], self.aad(kid, p.get("EncryptionContext")))
        except Exception:
            raise KmsError("InvalidCiphertextException", "")
        return {"Plaintext": base64.b64encode(pt).decode(), "KeyId": self.arn(kid),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    # -- instance metadata and container credentials
    def temp_credentials(self):
        ak = "ASIA" + os.urandom(8).hex().upper()
        t = {"secret": self.issue(30), "token": self.issue(60),
             "expires": time.time() + float(self.meta.get("lifetime", 3600)),
             "name": self.meta["user"]}
        self.temp[ak] = t
        return {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": ak,
                "SecretAccessKey": t["secret"], "Token": t["token"],
                "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                            time.gmtime(t["expires"])),
                "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def metadata(self, req):
        path = req.path
        if path == "/latest/api/token":
            self.count("imds:token")
            ttl = req.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if req.method != "PUT" or not ttl or not 1 <= int(ttl) <= 21600:
                return "imds:token", Reply(400, "")
            tok = self.issue(32)
            self.imds_tokens[tok] = time.time() + int(ttl)
            return "imds:token", Reply(200, tok, ctype="text/plain")
        role = self.meta.get("role", "atrest-role")
        base = "/latest/meta-data/iam/security-credentials/"
        if path.startswith(base):
            op = "imds:credentials" if path != base else "imds:role"
            self.count(op)
            tok = req.headers.get("X-aws-ec2-metadata-token")
            if tok not in self.imds_tokens or self.imds_tokens[tok] < time.time():
                return op, Reply(401, "")
            if path == base:
                return op, Reply(200, role, ctype="text/plain")
            if path != base + role:
                return op, Reply(404, "")
            return op, Reply(200, self.temp_credentials())
        if path.startswith("/v2/credentials/"):
            self.count("container:credentials")
            want = self.meta.get("container_token")
            if want and not hmac.compare_digest(req.headers.get("Authorization") or "",
                                                want):
                return "container:credentials", Reply(
                    403, {"code": "AccessDenied", "message": "bad authorization token"})
            return "container:credentials", Reply(200, self.temp_credentials())
        return "meta:?", Reply(404, "")


def main():
    args = contract.arg_parser(__doc__.splitlines()[0]).parse_args()
    svc = Kms(args)
    contract.App(svc, plain_extra=["meta"]).run()


if __name__ == "__main__":
    main()
