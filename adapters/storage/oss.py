"""Alibaba Cloud OSS through oss2 (``oss://bucket/prefix`` or ``oss://bucket.endpoint/prefix``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import oss2

from ..errors import AdapterError, AlreadyExistsError, ConfigError, NotFoundError
from .base import ObjectInfo

_PAGE_SIZE = 1000  # ListObjectsV2's maximum


@dataclass(frozen=True)
class OssConfig:
    """Endpoint and credentials. ``from_env`` reads the variable names Alibaba's SDKs use."""

    endpoint: str | None = None
    access_key_id: str | None = None
    access_key_secret: str | None = None
    security_token: str | None = None
    region: str | None = None  # set it to sign requests with V4
    connect_timeout: float = 30.0

    @classmethod
    def from_env(cls) -> OssConfig:
        return cls(
            endpoint=os.environ.get("OSS_ENDPOINT"),
            access_key_id=os.environ.get("OSS_ACCESS_KEY_ID"),
            access_key_secret=os.environ.get("OSS_ACCESS_KEY_SECRET"),
            security_token=os.environ.get("OSS_SESSION_TOKEN"),
            region=os.environ.get("OSS_REGION"),
        )

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"OssConfig(endpoint={self.endpoint!r}, region={self.region!r})"


def parse_oss_uri(uri: str) -> tuple[str, str | None, str]:
    """``oss://bucket[.endpoint]/prefix`` -> ``(bucket, endpoint or None, prefix)``."""
    if not uri.startswith("oss://"):
        raise ConfigError(f"{uri!r} is not an oss:// URI")
    rest = uri[len("oss://"):]
    host, _, prefix = rest.partition("/")
    bucket, _, endpoint = host.partition(".")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket")
    return bucket, endpoint or None, prefix


def _wrap(exc: Exception, what: str) -> AdapterError:
    if isinstance(exc, (oss2.exceptions.NoSuchKey, oss2.exceptions.NotFound)):
        return NotFoundError(f"{what}: not found")
    status = getattr(exc, "status", None)
    if isinstance(exc, oss2.exceptions.RequestError) or status in (408, 429) or (
        isinstance(status, int) and status >= 500
    ):
        return AdapterError(f"{what}: {exc}", retriable=True)
    return AdapterError(f"{what}: {exc}", is_input_error=True)


class OssStorage:
    def __init__(self, root: str, config: OssConfig | None = None):
        config = config or OssConfig.from_env()
        self.bucket_name, uri_endpoint, prefix = parse_oss_uri(root)
        endpoint = config.endpoint or uri_endpoint
        if not endpoint:
            raise ConfigError(f"no OSS endpoint for {root!r}: set it in the connection or URI")
        if not endpoint.startswith(("http://", "https://")):
            endpoint = "https://" + endpoint
        if not (config.access_key_id and config.access_key_secret):
            raise ConfigError("OSS access key id and secret are required")
        if config.security_token:  # StsAuth signs V1 unless told otherwise
            version = oss2.AUTH_VERSION_4 if config.region else oss2.AUTH_VERSION_1
            auth: Any = oss2.StsAuth(config.access_key_id, config.access_key_secret,
                                     config.security_token, auth_version=version)
        elif config.region:
            auth = oss2.AuthV4(config.access_key_id, config.access_key_secret)
        else:
            auth = oss2.Auth(config.access_key_id, config.access_key_secret)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.root_uri = f"oss://{self.bucket_name}/{self.prefix}"
        self._bucket = oss2.Bucket(auth, endpoint, self.bucket_name, region=config.region,
                                   connect_timeout=config.connect_timeout)

    def _uri(self, key: str) -> str:
        return self.root_uri + key

    def key_of(self, uri: str) -> str:
        bucket, _, full_key = parse_oss_uri(uri)
        if bucket != self.bucket_name or not full_key.startswith(self.prefix):
            raise ConfigError(f"{uri!r} is not under {self.root_uri}")
        return full_key[len(self.prefix):]

    def list(self, prefix: str = "", *, sizes: bool = True) -> Iterator[ObjectInfo]:
        try:  # the listing carries sizes and times (and ETags) whatever ``sizes`` says
            for obj in oss2.ObjectIteratorV2(self._bucket, prefix=self.prefix + prefix,
                                             max_keys=_PAGE_SIZE):
                if obj.key.endswith("/"):  # a "folder" placeholder object
                    continue
                key = obj.key[len(self.prefix):]
                yield ObjectInfo(key, self._uri(key), obj.size, obj.last_modified * 1000,
                                 obj.etag)
        except oss2.exceptions.OssError as exc:
            raise _wrap(exc, f"listing {self._uri(prefix)}") from exc

    def head(self, key: str) -> ObjectInfo:
        try:
            r = self._bucket.head_object(self.prefix + key)
        except oss2.exceptions.OssError as exc:
            raise _wrap(exc, self._uri(key)) from exc
        return ObjectInfo(key, self._uri(key), r.content_length, r.last_modified * 1000, r.etag)

    def read(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        try:
            return self._bucket.get_object(self.prefix + key, byte_range=byte_range).read()
        except oss2.exceptions.OssError as exc:
            raise _wrap(exc, self._uri(key)) from exc

    def write(self, key: str, data: bytes, content_type: str | None = None, *,
              exclusive: bool = False) -> str:
        headers = {"Content-Type": content_type} if content_type else {}
        if exclusive:  # OSS refuses the PUT with 409 FileAlreadyExists if the key exists
            headers["x-oss-forbid-overwrite"] = "true"
        try:
            self._bucket.put_object(self.prefix + key, data, headers=headers or None)
        except oss2.exceptions.OssError as exc:
            if exclusive and exc.status == 409 and exc.code == "FileAlreadyExists":
                raise AlreadyExistsError(f"{self._uri(key)} exists already") from exc
            raise _wrap(exc, self._uri(key)) from exc
        return self._uri(key)

    def signed_url(self, key: str, expires_s: int = 3600, params: dict | None = None) -> str:
        return self._bucket.sign_url("GET", self.prefix + key, expires_s, slash_safe=True,
                                     params=params)
