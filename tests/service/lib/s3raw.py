#!/usr/bin/python3
"""s3raw.py: hand-made S3 requests for the S3 API tests, signed with
botocore's SigV4 (an independent implementation) and sent with http.client,
for what no installed client sends on demand: aws-chunked bodies with chunk
signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as minio-go clients send),
unsigned bodies with a checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
as current AWS SDKs send), a skewed clock, a wrong payload hash, a broken
chunk signature.  The chunk and trailer signatures follow AWS's published
description of chunked uploads.

usage: s3raw.py MODE URL KEY_ID SECRET FILE
  MODE: chunked | chunked-badsig | trailer | trailer-badsum | skew |
        badhash | nohash | get (FILE unused; the Host header is
        $S3RAW_HOST when set: virtual-host style)
Prints the status, then the body.  Always ends within 60 s.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse
import zlib

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"


class Auth(S3SigV4Auth):
    """botocore's S3 signer with the payload hash this test chooses."""

    def payload(self, request):
        return request.context["payload_hash"]


def sign(method, url, headers, payload_hash, when):
    req = AWSRequest(method=method, url=url, headers=headers)
    req.context["payload_hash"] = payload_hash
    auth = Auth(Credentials(KEY, SECRET), "s3", REGION)
    # botocore takes the time from datetime.utcnow(); pin it.
    orig = datetime.datetime

    class Fixed(orig):
        @classmethod
        def utcnow(cls):
            return when

    datetime.datetime = Fixed
    try:
        auth.add_auth(req)
    finally:
        datetime.datetime = orig
    return dict(req.headers.items())


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(date8):
    k = hm(("AWS4" + SECRET).encode(), date8)
    k = hm(k, REGION)
    k = hm(k, "s3")
    return hm(k, "aws4_request")


def chunk_sig(key, amz_date, scope, prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                     hashlib.sha256(b"").hexdigest(),
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def send(method, url, headers, body):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    path = u.path + ("?" + u.query if u.query else "")
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    c.send(body)
    r = c.getresponse()
    sys.stdout.write("%d\n%s\n" % (r.status, r.read().decode(errors="replace")))


def chunked(url, data, bad):
    now = datetime.datetime.utcnow()
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], REGION)
    host = urllib.parse.urlsplit(url).netloc
    h = {"Host": host, "Content-Encoding": "aws-chunked",
         "x-amz-decoded-content-length": str(len(data))}
    size = 65536
    pieces = [data[i:i + size] for i in range(0, len(data), size)] + [b""]
    key = signing_key(amz_date[:8])
    # Content-Length is signed: compute the body's length first.
    length = sum(len("%x;chunk-signature=" % len(p)) + 64 + 4 + len(p)
                 for p in pieces)
    h["Content-Length"] = str(length)
    sh = sign("PUT", url, h, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now)
    prev = sh["Authorization"].rsplit("Signature=", 1)[1]
    body = b""
    for i, p in enumerate(pieces):
        s = chunk_sig(key, amz_date, scope, prev, p)
        prev = s
        if bad and i == 1:
            s = "0" * 64
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(p), s.encode(), p)
    send("PUT", url, sh, body)


def trailer(url, data, bad):
    now = datetime.datetime.utcnow()
    host = urllib.parse.urlsplit(url).netloc
    crc = zlib.crc32(data) ^ (1 if bad else 0)
    b64 = base64.b64encode(crc.to_bytes(4, "big")).decode()
    size = 65536
    body = b""
    for i in range(0, len(data), size):
        p = data[i:i + size]
        body += b"%x\r\n%s\r\n" % (len(p), p)
    body += b"0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % b64.encode()
    h = {"Host": host, "Content-Encoding": "aws-chunked",
         "x-amz-decoded-content-length": str(len(data)),
         "x-amz-trailer": "x-amz-checksum-crc32",
         "Content-Length": str(len(body))}
    sh = sign("PUT", url, h, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", now)
    send("PUT", url, sh, body)


def plain(url, data, mode):
    now = datetime.datetime.utcnow()
    if mode == "skew":
        now -= datetime.timedelta(minutes=16)
    host = urllib.parse.urlsplit(url).netloc
    h = {"Host": host, "Content-Length": str(len(data))}
    ph = hashlib.sha256(data).hexdigest()
    if mode == "badhash":
        ph = hashlib.sha256(data + b"x").hexdigest()
    sh = sign("PUT", url, h, ph, now)
    if mode == "nohash":
        del sh["X-Amz-Content-SHA256"]
    send("PUT", url, sh, data)


if __name__ == "__main__":
    mode, url, KEY, SECRET, path = sys.argv[1:6]
    data = b""
    if mode != "get":
        with open(path, "rb") as f:
            data = f.read()
    if mode == "get":
        now = datetime.datetime.utcnow()
        host = os.environ.get("S3RAW_HOST") or urllib.parse.urlsplit(url).netloc
        send("GET", url, sign("GET", url, {"Host": host},
                              hashlib.sha256(b"").hexdigest(), now), b"")
        sys.exit(0)
    if mode.startswith("chunked"):
        chunked(url, data, mode.endswith("badsig"))
    elif mode.startswith("trailer"):
        trailer(url, data, mode.endswith("badsum"))
    else:
        plain(url, data, mode)
