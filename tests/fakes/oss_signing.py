"""OSS request signatures as the OSS server computes them, for the fake OSS server.

Written from Alibaba Cloud's documentation of the V1 signature (HMAC-SHA1, in the
``Authorization`` header or in a URL's query) and the V4 signature (``OSS4-HMAC-SHA256``),
not from oss2's signing code, so a client that signs differently from OSS gets a mismatch.
Every function takes what the server sees: the method, the bucket, the decoded object key,
the decoded query pairs and the headers (names lower-cased).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

V4_ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

# The query parameters V1 signs (OSS's documented sub-resources, those of the object and
# bucket APIs). Other parameters (prefix, max-keys, list-type, encoding-type, ...) are not
# part of a V1 signature; V4 signs every parameter.
V1_SUBRESOURCES = frozenset({
    "acl", "append", "bucketInfo", "callback", "callback-var", "comp", "continuation-token",
    "cors", "delete", "encryption", "lifecycle", "location", "logging", "objectMeta",
    "partNumber", "policy", "position", "referer", "replication", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "security-token", "stat",
    "symlink", "tagging", "uploadId", "uploads", "versionId", "versioning", "versions",
    "website", "x-oss-process", "x-oss-traffic-limit",
})

Pairs = list[tuple[str, str]]


def _hmac(key: bytes, text: str, digest: str) -> bytes:
    return hmac.new(key, text.encode(), digest).digest()


def _canonical_resource(bucket: str, key: str, query: Pairs) -> str:
    """``/bucket/key`` and the sorted sub-resources (``name`` alone when it has no value)."""
    subresources = sorted((k, v) for k, v in query if k in V1_SUBRESOURCES)
    resource = f"/{bucket}/{key}" if bucket else "/"
    if not subresources:
        return resource
    return resource + "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)


def _canonical_oss_headers(headers: dict[str, str]) -> str:
    return "".join(f"{k}:{v.strip()}\n" for k, v in sorted(headers.items())
                   if k.startswith("x-oss-"))


def v1_signature(secret: str, method: str, bucket: str, key: str, query: Pairs,
                 headers: dict[str, str], date: str) -> str:
    """Base64 HMAC-SHA1 of VERB, Content-MD5, Content-Type, Date (a URL's Expires),
    the x-oss- headers and the canonical resource."""
    string_to_sign = "\n".join([
        method, headers.get("content-md5", ""), headers.get("content-type", ""), date,
        _canonical_oss_headers(headers) + _canonical_resource(bucket, key, query)])
    return base64.b64encode(_hmac(secret.encode(), string_to_sign, "sha1")).decode()


def _v4_encode(text: str, keep_slash: bool) -> str:
    """RFC 3986 percent-encoding: only A-Z a-z 0-9 - _ . ~ stay (and / in the path)."""
    return quote(text, safe="/" if keep_slash else "")


def _canonical_query(query: Pairs) -> str:
    encoded = sorted((_v4_encode(k, False), _v4_encode(v, False)) for k, v in query)
    return "&".join(f"{k}={v}" if v else k for k, v in encoded)


def _canonical_headers(headers: dict[str, str], additional: list[str]) -> str:
    def signed(name: str) -> bool:
        return (name.startswith("x-oss-") or name in ("content-type", "content-md5")
                or name in additional)

    return "".join(f"{k}:{v.strip()}\n" for k, v in sorted(headers.items()) if signed(k))


def v4_signing_key(secret: str, date: str, region: str) -> bytes:
    """HMAC-SHA256 chain: ``aliyun_v4`` + secret, then date, region, product, terminator."""
    key = _hmac(("aliyun_v4" + secret).encode(), date, "sha256")
    for part in (region, "oss", "aliyun_v4_request"):
        key = _hmac(key, part, "sha256")
    return key


def v4_signature(secret: str, region: str, method: str, bucket: str, key: str, query: Pairs,
                 headers: dict[str, str], additional: list[str], payload_hash: str,
                 timestamp: str) -> str:
    """Hex HMAC-SHA256, with the signing key of the request's day and the server's region,
    of the string to sign over the canonical request."""
    canonical_request = "\n".join([
        method, _v4_encode(f"/{bucket}/{key}" if bucket else "/", True),
        _canonical_query(query), _canonical_headers(headers, additional),
        ";".join(sorted(additional)), payload_hash])
    scope = f"{timestamp[:8]}/{region}/oss/aliyun_v4_request"
    string_to_sign = "\n".join([
        V4_ALGORITHM, timestamp, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest()])
    signing_key = v4_signing_key(secret, timestamp[:8], region)
    return hmac.new(signing_key, string_to_sign.encode(), "sha256").hexdigest()
