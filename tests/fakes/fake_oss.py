"""A fake Alibaba OSS server for tests: the REST calls mmdm makes, in OSS's wire format.

Serves path-style requests (``/bucket/key``), which oss2 sends to IP endpoints: PutObject,
GetObject (with Range), HeadObject, DeleteObject and ListObjectsV2 with paging and
``encoding-type=url``. Signatures are not checked. In memory; one bucket per name.
"""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape


class FakeOss:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, tuple[bytes, float, str]]] = {}
        self.requests: list[tuple[str, str]] = []
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _target(self) -> tuple[str, str, dict[str, list[str]]]:
                parts = urlsplit(self.path)
                bucket, _, key = parts.path.lstrip("/").partition("/")
                fake.requests.append((self.command, self.path))
                return unquote(bucket), unquote(key), parse_qs(parts.query, keep_blank_values=True)

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("x-oss-request-id", "fake-request")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str) -> None:
                body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                        f"<Message>{code}</Message><RequestId>fake-request</RequestId>"
                        "<HostId>fake</HostId></Error>").encode()
                self._send(status, body if self.command != "HEAD" else b"",
                           {"Content-Type": "application/xml"})

            def _object(self, bucket: str, key: str) -> tuple[bytes, float, str] | None:
                return fake.buckets.get(bucket, {}).get(key)

            def _object_headers(self, obj: tuple[bytes, float, str]) -> dict[str, str]:
                return {"ETag": f'"{obj[2]}"', "Last-Modified": formatdate(obj[1], usegmt=True),
                        "Content-Type": "application/octet-stream"}

            def do_PUT(self) -> None:
                bucket, key, _ = self._target()
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.put(bucket, key, data, mtime=1767225600.0)
                self._send(200, headers={"ETag": f'"{hashlib.md5(data).hexdigest().upper()}"'})

            def do_HEAD(self) -> None:
                bucket, key, _ = self._target()
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
                bucket, key, _ = self._target()
                fake.buckets.get(bucket, {}).pop(key, None)
                self._send(204)

            def do_GET(self) -> None:
                bucket, key, query = self._target()
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
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
