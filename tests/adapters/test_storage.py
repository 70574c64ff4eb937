"""Storage: local folders for real, OSS through oss2 against the fake OSS server."""

from __future__ import annotations

import urllib.request

import pytest

from mmdm.adapters.errors import ConfigError, NotFoundError
from mmdm.adapters.storage import LocalStorage, OssConfig, OssStorage, open_storage
from mmdm.adapters.storage.oss import parse_oss_uri


def _oss(fake, root="oss://bkt/data/") -> OssStorage:
    return OssStorage(root, OssConfig(endpoint=fake.endpoint, access_key_id="ak",
                                      access_key_secret="secret-key"))


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


def test_oss_read_head_write_sign(fake_oss):
    s = _oss(fake_oss)
    uri = s.write("dir/中文 a+b.png", b"0123456789", "image/png")
    assert uri == "oss://bkt/data/dir/中文 a+b.png"
    assert s.key_of(uri) == "dir/中文 a+b.png"
    assert [o.key for o in s.list()] == ["dir/中文 a+b.png"]
    assert s.read("dir/中文 a+b.png") == b"0123456789"
    assert s.read("dir/中文 a+b.png", (2, 4)) == b"234"
    head = s.head("dir/中文 a+b.png")
    assert head.size == 10 and head.etag == "781E5E245D69B566979B86E28D23F2C7"
    url = s.signed_url("dir/中文 a+b.png", 600)
    assert "Signature=" in url and "Expires=" in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"0123456789"
    with pytest.raises(NotFoundError):
        s.read("missing.jpg")
    with pytest.raises(NotFoundError):
        s.head("missing.jpg")


def test_oss_config_repr_hides_secrets():
    assert "secret-key" not in repr(OssConfig(endpoint="e", access_key_id="ak",
                                             access_key_secret="secret-key"))
