"""File bytes and thumbnails in each ThumbnailMode, with their cache headers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mmdm.adapters.storage.local import local_path
from mmdm.airflow_plugin.api.thumbnails import parse_mode


@pytest.fixture
def probe(client, metas_url):
    # Sample images are 160x120.
    return client.get(metas_url, params={"QueryExpression": "FileDir:'blue'"}).json()[
        "DatasetFileMetas"][0]


def _thumb(client, probe, mode):
    url = probe["ThumbnailUrl"].split("?")[0]
    return client.get(url, params={"ThumbnailMode": mode} if mode else {})


@pytest.mark.parametrize("mode, size", [
    (None, (200, 150)),  # default w_200
    ("w_80", (80, 60)),
    ("h_30", (40, 30)),
    ("p_50", (80, 60)),
    ("w_100,h_100", (100, 75)),  # fit inside (OSS m_lfit)
    ("m_fill,w_50,h_50", (50, 50)),
    ("m_pad,w_100,h_40,color_FF0000", (100, 40)),
    ("m_fixed,w_33,h_77", (33, 77)),
])
def test_each_mode_gives_its_size(client, probe, mode, size):
    r = _thumb(client, probe, mode)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"]
    assert Image.open(io.BytesIO(r.content)).size == size


def test_pad_fills_with_the_colour(client, probe):
    im = Image.open(io.BytesIO(_thumb(client, probe, "m_pad,w_100,h_200,color_FF0000").content))
    r, g, b = im.convert("RGB").getpixel((50, 2))
    assert r > 200 and g < 60 and b < 60


def test_thumbnails_are_cached_on_disk_and_revalidate(client, probe, built):
    first = _thumb(client, probe, "w_64")
    cached = list((built.workspace / "thumbnails").rglob("*.jpg"))
    assert cached
    again = client.get(probe["ThumbnailUrl"].split("?")[0], params={"ThumbnailMode": "w_64"},
                       headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("mode", ["w_0", "p_101", "m_fill,w_10", "m_zoom,w_1,h_1", "x",
                                  "w_10,color_FFFFFF", "w_20000"])
def test_bad_modes_are_400s(client, probe, mode):
    r = _thumb(client, probe, mode)
    assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.ThumbnailMode"


def test_parse_mode_is_case_and_order_insensitive():
    assert parse_mode("W_10,H_20,M_FILL") == parse_mode("m_fill,w_10,h_20")


def test_download_gives_the_original_bytes(client, probe, built):
    r = client.get(probe["DownloadUrl"])
    assert r.status_code == 200 and r.headers["content-type"] == probe["ContentType"]
    assert r.content == local_path(probe["Uri"]).read_bytes()
    other = client.get(f"/api/v1/datasets/{built.dataset_id}/files/nope")
    assert other.status_code == 404
