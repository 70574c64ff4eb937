"""A dataset version of generated images, scanned, with the seed's driving tag definition."""

from __future__ import annotations

import pytest
from PIL import Image

from mmdm.adapters.metadata import open_store
from mmdm.adapters.scan import build_file_metas
from tests.models.driving_tags import DRIVING_TAGS, GUIDE_PROMPT_EN


def make_version(store, root, n: int):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (32, 24), (i * 7 % 256, i * 13 % 256, 90)).save(root / f"{i:03d}.png")
    ds = store.create_dataset("faults", root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("driving", DRIVING_TAGS, guide_prompt=GUIDE_PROMPT_EN)
    return ds.dataset_id


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(str(tmp_path / "metadata.db"))
    yield store
    store.close()
