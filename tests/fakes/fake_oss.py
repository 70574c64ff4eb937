"""A fake Alibaba OSS server for tests: the REST calls mmdm makes, in OSS's wire format.

Serves path-style requests (``/bucket/key``), which oss2 sends to IP endpoints: PutObject,
GetObject (with Range), HeadObject, DeleteObject and ListObjectsV2 with paging and
``encoding-type=url``. In memory; one bucket per name.

Requests are authenticated as OSS does it (``oss_signing``): a V1 signature (``Authorization:
OSS id:signature``, or ``OSSAccessKeyId``/``Expires``/``Signature`` in a URL) or a V4 one
(``OSS4-HMAC-SHA256`` in the header or in the URL, scoped to ``region``), computed with the
secret of ``keys[id]``. An id in ``tokens`` is a temporary (STS) key: its requests must carry
that security token. Anything else is refused with 403 and OSS's error code:
``InvalidAccessKeyId``, ``InvalidSecurityToken``, ``SignatureDoesNotMatch``,
``RequestTimeTooSkewed`` (a header date 15 minutes off ``clock()``), ``AccessDenied`` (an
expired URL, or no signature at all). ``signed_with`` records the version of each accepted
request ("v1" or "v4").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from tests.fakes import oss_signing

_MAX_SKEW_S = 15 * 60  # OSS refuses a request whose date is further off than this
_V4_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class Refused(Exception):
    """A request OSS would refuse: HTTP status and OSS's error code."""

    def __init__(self, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Seen:
    """A request as the server sees it: decoded key and query, lower-cased header names."""

    method: str
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        return dict(self.query).get(name)


class FakeOss:
    def __init__(self, keys: dict[str, str] | None = None, *,
                 tokens: dict[str, str] | None = None, region: str = "cn-hangzhou") -> None:
        self.keys = {"ak": "sk"} if keys is None else dict(keys)  # AccessKey id -> secret
        self.tokens = dict(tokens or {})  # STS AccessKey id -> its security token
        self.region = region
        self.clock = time.time  # tests may move it to expire signed URLs
        self.buckets: dict[str, dict[str, tuple[bytes, float, str]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.signed_with: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, bucket: str, key: str, data: bytes, mtime: float = 1767225600.0) -> None:
        with self._lock:
            etag = hashlib.md5(data).hexdigest().upper()
            self.buckets.setdefault(bucket, {})[key] = (data, mtime, etag)

    def start(self) -> FakeOss:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, seen: Seen) -> str:
        """The signature version of an acceptable request ("v1" or "v4"); raises Refused."""
        auth = seen.headers.get("authorization", "")
        if auth.startswith(oss_signing.V4_ALGORITHM + " "):
            self._v4_header(seen, auth)
            return "v4"
        if auth.startswith("OSS "):
            self._v1_header(seen, auth)
            return "v1"
        if seen.param("x-oss-signature-version") == oss_signing.V4_ALGORITHM:
            self._v4_url(seen)
            return "v4"
        if seen.param("Signature") is not None:
            self._v1_url(seen)
            return "v1"
        raise Refused("AccessDenied", "You have no right to access this object because of "
                      "bucket acl.")

    def _secret(self, key_id: str, token: str | None) -> str:
        if key_id not in self.keys:
            raise Refused("InvalidAccessKeyId",
                          "The OSS Access Key Id you provided does not exist in our records.")
        if token != self.tokens.get(key_id):
            raise Refused("InvalidSecurityToken", "The security token you provided is invalid.")
        return self.keys[key_id]

    def _check_skew(self, moment: float) -> None:
        if abs(self.clock() - moment) > _MAX_SKEW_S:
            raise Refused("RequestTimeTooSkewed", "The difference between the request time "
                          "and the current time is too large.")

    def _check_expiry(self, expires_at: float) -> None:
        if self.clock() > expires_at:
            raise Refused("AccessDenied", "Request has expired.")

    @staticmethod
    def _match(expected: str, given: str | None) -> None:
        if given is None or not hmac.compare_digest(expected, given):
            raise Refused("SignatureDoesNotMatch", "The request signature we calculated does "
                          "not match the signature you provided. Check your key and signing "
                          "method.")

    def _v1_header(self, seen: Seen, auth: str) -> None:
        key_id, _, signature = auth[len("OSS "):].rpartition(":")
        secret = self._secret(key_id, seen.headers.get("x-oss-security-token"))
        date = seen.headers.get("x-oss-date") or seen.headers.get("date", "")
        try:
            self._check_skew(parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            raise Refused("AccessDenied", "OSS authentication requires a valid Date.") from None
        self._match(oss_signing.v1_signature(secret, seen.method, seen.bucket, seen.key,
                                             seen.query, seen.headers, date), signature)

    def _v1_url(self, seen: Seen) -> None:
        secret = self._secret(seen.param("OSSAccessKeyId") or "", seen.param("security-token"))
        expires = seen.param("Expires") or ""
        if not expires.isdigit():
            raise Refused("AccessDenied", "Expires must be a number of seconds since 1970.")
        self._check_expiry(int(expires))
        self._match(oss_signing.v1_signature(secret, seen.method, seen.bucket, seen.key,
                                             seen.query, seen.headers, expires),
                    seen.param("Signature"))

    def _v4_header(self, seen: Seen, auth: str) -> None:
        fields = dict(part.strip().partition("=")[::2]
                      for part in auth[len(oss_signing.V4_ALGORITHM):].split(","))
        timestamp = seen.headers.get("x-oss-date", "")
        self._check_skew(_v4_time(timestamp))
        secret = self._secret(fields.get("Credential", "").split("/")[0],
                              seen.headers.get("x-oss-security-token"))
        additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
        payload = seen.headers.get("x-oss-content-sha256")
        if payload is None:
            raise Refused("InvalidArgument", "x-oss-content-sha256 is required.", status=400)
        self._match(oss_signing.v4_signature(secret, self.region, seen.method, seen.bucket,
                                             seen.key, seen.query, seen.headers, additional,
                                             payload, timestamp), fields.get("Signature"))

    def _v4_url(self, seen: Seen) -> None:
        timestamp = seen.param("x-oss-date") or ""
        expires = seen.param("x-oss-expires") or ""
        if not expires.isdigit():
            raise Refused("InvalidArgument", "x-oss-expires is required.", status=400)
        self._check_expiry(_v4_time(timestamp) + int(expires))
        secret = self._secret((seen.param("x-oss-credential") or "").split("/")[0],
                              seen.param("x-oss-security-token"))
        additional = [h for h in (seen.param("x-oss-additional-headers") or "").split(";") if h]
        signed_query = [(k, v) for k, v in seen.query if k != "x-oss-signature"]
        self._match(oss_signing.v4_signature(secret, self.region, seen.method, seen.bucket,
                                             seen.key, signed_query, seen.headers, additional,
                                             oss_signing.UNSIGNED_PAYLOAD, timestamp),
                    seen.param("x-oss-signature"))

    # --- HTTP -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _target(self) -> tuple[str, str, dict[str, list[str]]] | None:
                """Bucket, key and query of an authenticated request; None once refused."""
                parts = urlsplit(self.path)
                bucket, _, key = parts.path.lstrip("/").partition("/")
                fake.requests.append((self.command, self.path))
                pairs = parse_qsl(parts.query, keep_blank_values=True)
                seen = Seen(self.command, unquote(bucket), unquote(key), pairs,
                            {k.lower(): v for k, v in self.headers.items()})
                try:
                    fake.signed_with.append(fake.authenticate(seen))
                except Refused as exc:
                    self._error(exc.status, exc.code, exc.message)
                    return None
                query: dict[str, list[str]] = {}
                for k, v in pairs:
                    query.setdefault(k, []).append(v)
                return seen.bucket, seen.key, query

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("x-oss-request-id", "fake-request")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str | None = None) -> None:
                body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                        f"<Message>{escape(message or code)}</Message>"
                        "<RequestId>fake-request</RequestId><HostId>fake</HostId></Error>").encode()
                headers = {"Content-Type": "application/xml"}
                if self.command == "HEAD":  # no body: OSS sends the error in a header
                    headers["x-oss-err"] = base64.b64encode(body).decode()
                self._send(status, body, headers)

            def _object(self, bucket: str, key: str) -> tuple[bytes, float, str] | None:
                return fake.buckets.get(bucket, {}).get(key)

            def _object_headers(self, obj: tuple[bytes, float, str]) -> dict[str, str]:
                return {"ETag": f'"{obj[2]}"', "Last-Modified": formatdate(obj[1], usegmt=True),
                        "Content-Type": "application/octet-stream"}

            def do_PUT(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if (target := self._target()) is None:
                    return
                bucket, key, _ = target
                forbid = self.headers.get("x-oss-forbid-overwrite", "").lower() == "true"
                if forbid and self._object(bucket, key) is not None:
                    return self._error(409, "FileAlreadyExists",
                                       "The object you specified already exists.")
                fake.put(bucket, key, data, mtime=1767225600.0)
                self._send(200, headers={"ETag": f'"{hashlib.md5(data).hexdigest().upper()}"'})

            def do_HEAD(self) -> None:
                if (target := self._target()) is None:
                    return
                bucket, key, _ = target
                obj = self._object(bucket, key)
                if obj is None:
                    return self._send(404)
                headers = self._object_headers(obj)
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(obj[0])))
                self.end_headers()

            def do_DELETE(self) -> None:
                if (target := self._target()) is None:
                    return
                bucket, key, _ = target
                fake.buckets.get(bucket, {}).pop(key, None)
                self._send(204)

            def do_GET(self) -> None:
                if (target := self._target()) is None:
                    return
                bucket, key, query = target
                if not key and query.get("list-type") == ["2"]:
                    return self._list(bucket, query)
                obj = self._object(bucket, key)
                if obj is None:
                    return self._error(404, "NoSuchKey")
                headers = self._object_headers(obj)
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    first_s, _, last_s = rng[6:].partition("-")
                    first = int(first_s)
                    last = min(int(last_s) if last_s else len(obj[0]) - 1, len(obj[0]) - 1)
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(obj[0])}"
                    return self._send(206, obj[0][first:last + 1], headers)
                self._send(200, obj[0], headers)

            def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
                if bucket not in fake.buckets:
                    return self._error(404, "NoSuchBucket")
                prefix = query.get("prefix", [""])[0]
                token = query.get("continuation-token", [""])[0]
                max_keys = int(query.get("max-keys", ["100"])[0])
                keys = sorted(k for k in fake.buckets[bucket] if k.startswith(prefix) and k > token)
                page, more = keys[:max_keys], len(keys) > max_keys
                items = []
                for k in page:
                    data, mtime, etag = fake.buckets[bucket][k]
                    items.append(
                        f"<Contents><Key>{quote(k)}</Key><LastModified>"
                        f"{_iso(mtime)}</LastModified><ETag>\"{etag}\"</ETag><Type>Normal</Type>"
                        f"<Size>{len(data)}</Size><StorageClass>Standard</StorageClass></Contents>"
                    )
                next_token = (f"<NextContinuationToken>{quote(page[-1])}</NextContinuationToken>"
                              if more else "")
                body = (
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"
                    f"<Name>{escape(bucket)}</Name><Prefix>{quote(prefix)}</Prefix>"
                    f"<MaxKeys>{max_keys}</MaxKeys><EncodingType>url</EncodingType>"
                    f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{next_token}"
                    f"<KeyCount>{len(page)}</KeyCount>{''.join(items)}</ListBucketResult>"
                ).encode()
                self._send(200, body, {"Content-Type": "application/xml"})

        return Handler


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _v4_time(timestamp: str) -> float:
    try:
        moment = datetime.strptime(timestamp, _V4_TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise Refused("AccessDenied", "x-oss-date must be an ISO 8601 UTC time "
                      "(20250101T000000Z).") from None
    return moment.timestamp()
