"""Storage: local folders for real, OSS through oss2 against the fake OSS server, which
checks signatures as OSS does (V1, V4, STS tokens, signed URLs)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from mmdm.adapters.errors import AdapterError, ConfigError, NotFoundError
from mmdm.adapters.storage import LocalStorage, OssConfig, OssStorage, open_storage
from mmdm.adapters.storage.oss import parse_oss_uri

# The ways mmdm signs: AccessKey (V1, or V4 when a region is set), STS (the same, plus a token).
SIGNINGS = {
    "v1": {"access_key_id": "ak", "access_key_secret": "sk"},
    "v4": {"access_key_id": "ak", "access_key_secret": "sk", "region": "cn-hangzhou"},
    "sts-v1": {"access_key_id": "STS.tmp", "access_key_secret": "tmp-secret",
               "security_token": "sts-token"},
    "sts-v4": {"access_key_id": "STS.tmp", "access_key_secret": "tmp-secret",
               "security_token": "sts-token", "region": "cn-hangzhou"},
}


@pytest.fixture
def oss_fake(fake_oss):
    """The fake OSS knowing a permanent key (ak/sk) and a temporary STS one."""
    fake_oss.keys["STS.tmp"] = "tmp-secret"
    fake_oss.tokens["STS.tmp"] = "sts-token"
    return fake_oss


def _oss(fake, root="oss://bkt/data/", **credentials) -> OssStorage:
    return OssStorage(root, OssConfig(endpoint=fake.endpoint,
                                      **(credentials or SIGNINGS["v1"])))


def _fetch(url: str) -> tuple[int, bytes]:
    """GET a URL as a browser or a model service would: status and body."""
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_local_list_is_recursive_and_relative(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x y.jpg").write_bytes(b"12345")
    (tmp_path / "top.png").write_bytes(b"1")
    s = open_storage(tmp_path.as_uri())
    assert isinstance(s, LocalStorage)
    objs = {o.key: o for o in s.list()}
    assert set(objs) == {"a/b/x y.jpg", "top.png"}
    assert objs["a/b/x y.jpg"].size == 5 and objs["a/b/x y.jpg"].etag is None
    assert objs["a/b/x y.jpg"].uri.endswith("/a/b/x%20y.jpg")
    assert s.key_of(objs["a/b/x y.jpg"].uri) == "a/b/x y.jpg"
    assert [o.key for o in s.list("a")] == ["a/b/x y.jpg"]


def test_local_list_without_sizes_stats_no_plain_file(tmp_path):
    """``sizes=False`` (a first build reads every file anyway) lists a plain file from its
    folder entry; a link still goes through the checks a stat makes, and what is no file is
    still skipped."""
    from mmdm.adapters.storage.base import UNKNOWN

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"12345")
    os.symlink("a/x.jpg", tmp_path / "link.jpg")
    os.symlink("nowhere.jpg", tmp_path / "dangling.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    s = LocalStorage(str(tmp_path))
    with_sizes = {o.key: o for o in s.list()}
    objs = {o.key: o for o in s.list(sizes=False)}
    assert set(objs) == set(with_sizes) == {"a/x.jpg", "link.jpg", "dangling.jpg", "pipe.jpg"}
    assert (objs["a/x.jpg"].size, objs["a/x.jpg"].mtime_ms) == (UNKNOWN, UNKNOWN)
    assert with_sizes["a/x.jpg"].size == 5 and with_sizes["a/x.jpg"].mtime_ms > 0
    for key in ("link.jpg", "dangling.jpg", "pipe.jpg"):  # as listed with sizes
        assert objs[key] == with_sizes[key]
    assert objs["link.jpg"].size == 5 and objs["pipe.jpg"].skip
    assert objs["dangling.jpg"].problem.startswith("dangling link")


def test_local_read_write_head(tmp_path):
    s = LocalStorage(str(tmp_path))
    uri = s.write("out/m.yaml", b"hello world")
    assert uri == (tmp_path / "out" / "m.yaml").as_uri()
    assert s.read("out/m.yaml") == b"hello world"
    assert s.read("out/m.yaml", (6, 10)) == b"world"
    assert s.head("out/m.yaml").size == 11
    assert not list(tmp_path.glob("out/*.part"))
    with pytest.raises(NotFoundError):
        s.read("nope.jpg")
    with pytest.raises(ConfigError):
        s.read("../../etc/passwd")


def test_oss_uri_forms():
    assert parse_oss_uri("oss://bkt/a/b/") == ("bkt", None, "a/b/")
    assert parse_oss_uri("oss://bkt.oss-cn-hangzhou.aliyuncs.com/a") == (
        "bkt", "oss-cn-hangzhou.aliyuncs.com", "a")
    with pytest.raises(ConfigError):
        parse_oss_uri("s3://bkt/a")
    with pytest.raises(ConfigError):
        OssStorage("oss://bkt/a", OssConfig(access_key_id="a", access_key_secret="b"))
    with pytest.raises(ConfigError):
        OssStorage("oss://bkt/a", OssConfig(endpoint="http://127.0.0.1:1"))


def test_oss_listing_pages_and_streams(fake_oss):
    for i in range(2345):
        fake_oss.put("bkt", f"data/img/{i:05d}.jpg", b"x" * (i % 7))
    fake_oss.put("bkt", "data/folder/", b"")
    fake_oss.put("bkt", "elsewhere/a.jpg", b"x")
    s = _oss(fake_oss)
    listing = s.list()
    first = next(listing)  # streamed: one page fetched so far
    assert first.key == "img/00000.jpg" and first.uri == "oss://bkt/data/img/00000.jpg"
    assert sum(1 for r in fake_oss.requests if "list-type=2" in r[1]) == 1
    rest = list(listing)
    assert len(rest) == 2344
    assert sum(1 for r in fake_oss.requests if "list-type=2" in r[1]) == 3
    assert rest[-1].etag and rest[-1].size == 2344 % 7


@pytest.mark.parametrize("signing", SIGNINGS)
def test_oss_read_head_write_sign(oss_fake, signing):
    s = _oss(oss_fake, **SIGNINGS[signing])
    uri = s.write("dir/中文 a+b.png", b"0123456789", "image/png")
    assert uri == "oss://bkt/data/dir/中文 a+b.png"
    assert s.key_of(uri) == "dir/中文 a+b.png"
    assert [o.key for o in s.list()] == ["dir/中文 a+b.png"]
    assert s.read("dir/中文 a+b.png") == b"0123456789"
    assert s.read("dir/中文 a+b.png", (2, 4)) == b"234"
    head = s.head("dir/中文 a+b.png")
    assert head.size == 10 and head.etag == "781E5E245D69B566979B86E28D23F2C7"
    url = s.signed_url("dir/中文 a+b.png", 600)
    assert ("x-oss-signature=" if signing.endswith("v4") else "Signature=") in url
    assert _fetch(url) == (200, b"0123456789")
    with pytest.raises(NotFoundError):
        s.read("missing.jpg")
    with pytest.raises(NotFoundError):
        s.head("missing.jpg")
    # A region means V4, with or without an STS token.
    assert set(oss_fake.signed_with) == {signing[-2:]}


@pytest.mark.parametrize("signing", SIGNINGS)
def test_oss_refuses_wrong_credentials(oss_fake, signing):
    oss_fake.put("bkt", "data/a.jpg", b"jpeg")
    good = SIGNINGS[signing]
    wrong = {
        "SignatureDoesNotMatch": {**good, "access_key_secret": "not-the-secret"},
        "InvalidAccessKeyId": {**good, "access_key_id": "unknown"},
        # An STS key without its token, a permanent key with one, a wrong token.
        "InvalidSecurityToken": {**good, "security_token": None if "security_token" in good
                                 else "sts-token"},
    }
    if "security_token" in good:
        wrong["InvalidSecurityToken "] = {**good, "security_token": "expired-token"}
    if "region" in good:  # V4 signs with the region: a wrong one is a wrong signature
        wrong["SignatureDoesNotMatch "] = {**good, "region": "cn-beijing"}
    for code, credentials in wrong.items():
        s = _oss(oss_fake, **credentials)
        with pytest.raises(AdapterError, match=code.strip()) as err:
            s.read("a.jpg")
        assert "403" in err.value.message and err.value.is_input_error
        assert not err.value.retriable
        with pytest.raises(AdapterError, match=code.strip()):  # HEAD: the code in x-oss-err
            s.head("a.jpg")
        with pytest.raises(AdapterError, match=code.strip()):
            s.write("b.jpg", b"x")
        assert _fetch(s.signed_url("a.jpg", 600))[0] == 403
    assert list(oss_fake.buckets["bkt"]) == ["data/a.jpg"]
    assert _oss(oss_fake, **good).read("a.jpg") == b"jpeg"


@pytest.mark.parametrize("signing", SIGNINGS)
def test_oss_signed_urls_cannot_be_tampered_with_or_outlive_expiry(oss_fake, signing):
    oss_fake.put("bkt", "data/a.jpg", b"jpeg a")
    oss_fake.put("bkt", "data/b.jpg", b"jpeg b")
    s = _oss(oss_fake, **SIGNINGS[signing])
    url = s.signed_url("a.jpg", 60)
    assert _fetch(url) == (200, b"jpeg a")
    status, body = _fetch(url.replace("/data/a.jpg", "/data/b.jpg"))  # another object
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    token = "x-oss-security-token" if signing == "sts-v4" else "security-token"
    if "security_token" in SIGNINGS[signing]:
        status, body = _fetch(_with_query(url, **{token: None}))  # the token left out
        assert status == 403 and b"<Code>InvalidSecurityToken</Code>" in body
    expiry = "x-oss-expires" if signing.endswith("v4") else "Expires"
    later = str(int(dict(parse_qsl(urlsplit(url).query))[expiry]) + 3600)
    status, body = _fetch(_with_query(url, **{expiry: later}))  # a longer life, self-granted
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    oss_fake.clock = lambda: time.time() + 120  # the URL lived 60 s
    status, body = _fetch(url)
    assert status == 403 and b"Request has expired" in body
    # Header-signed requests carry their own date: two minutes off is within OSS's tolerance,
    # an hour is not.
    assert s.read("a.jpg") == b"jpeg a"
    oss_fake.clock = lambda: time.time() + 3600
    with pytest.raises(AdapterError, match="RequestTimeTooSkewed"):
        s.read("a.jpg")


def test_oss_refuses_unsigned_requests(oss_fake):
    oss_fake.put("bkt", "data/a.jpg", b"jpeg")
    status, body = _fetch(f"{oss_fake.endpoint}/bkt/data/a.jpg")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_oss_config_repr_hides_secrets():
    assert "secret-key" not in repr(OssConfig(endpoint="e", access_key_id="ak",
                                             access_key_secret="secret-key"))
