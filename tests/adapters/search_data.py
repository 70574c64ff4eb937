"""A searchable version for the SearchService tests: file metas, their vectors, an index job.

File ``i`` has DataSize ``i`` (so ``DataSize < n`` selects exactly n files), a scrambled update
time (some missing), tags ``even``/``odd`` and ``mod7-<i % 7>``; every 50th file is DELETED and
has no vector. Vectors are seeded random unit vectors; the fake embedder maps a text to a seeded
vector and an image whose bytes are ``vec:<i>`` to file ``i``'s vector, so an image query for a
file finds that file first with score 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmdm.adapters.metadata import FileMeta, MetadataStore
from mmdm.adapters.models.base import ImageInput
from mmdm.adapters.vectors.base import VectorRecord, VectorStore
from mmdm.query import Query, select_rows

N = 3_000
DIM = 16
MODEL = "fake-embed"
INDEX_SET = "set-1"
VECTORS = np.random.default_rng(5).standard_normal((N, DIM)).astype(np.float32)
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)


def file_id(i: int) -> str:
    return f"file-{i:05d}"


def meta(i: int, dataset_id: str, folder: Path) -> FileMeta:
    return FileMeta(
        file_meta_id=file_id(i), dataset_id=dataset_id, dataset_version="v1",
        uri=(folder / f"img{i}.jpg").as_uri(), file_name=f"img{i}.jpg", file_dir="",
        data_size=i, content_type="image/jpeg", file_type="image",
        file_update_time=None if i % 11 == 0 else 1_700_000_000_000 + (i * 7919 % N) * 1000,
        file_create_time=1_600_000_000_000 + (N - i) * 1000,
        tags_ai=["even" if i % 2 == 0 else "odd", f"mod7-{i % 7}"],
        status="DELETED" if i % 50 == 0 else "ACTIVE")


@dataclass
class Loaded:
    store: MetadataStore
    dataset_id: str
    metas: list[FileMeta]
    folder: Path


def load(store: MetadataStore, folder: Path) -> Loaded:
    ds = store.create_dataset(f"search-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}",
                              folder.as_uri())
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([meta(i, ds.dataset_id, folder) for i in range(N)])
    for i in (7, 9):  # files an image query can read
        (folder / f"img{i}.jpg").write_bytes(f"vec:{i}".encode())
    metas = list(store.iter_file_metas(ds.dataset_id, "v1", status=None))
    return Loaded(store, ds.dataset_id, metas, folder)


def index_job(store: MetadataStore, dataset_id: str, status: str = "Succeeded",
              **spec: object) -> None:
    job = store.create_job(dataset_id, "v1", "SemanticIndex", job_spec={
        "indexSetId": INDEX_SET, "embeddingModel": MODEL, "dimension": DIM,
        "databaseTableName": "numpy", **spec})
    store.finish_job(job.job_id, status)


def fill(vectors: VectorStore, dataset_id: str, metas: list[FileMeta]) -> VectorStore:
    vectors.ensure_table()
    vectors.upsert([VectorRecord(INDEX_SET, m.file_meta_id, dataset_id, "v1", m.uri,
                                 VECTORS[int(m.data_size or 0)])
                    for m in metas if m.status == "ACTIVE"])
    return vectors


def text_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeEmbedder:
    model, dimension, max_batch, supports_text = MODEL, DIM, 8, True

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        return [text_vector(t) for t in texts]

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        return [VECTORS[int((im.data or b"vec:0")[4:])] for im in images]


def exact(loaded: Loaded, query: Query, vector: np.ndarray, top_k: int | None,
          threshold: float | None) -> list[tuple[str, float]]:
    """The expected ranked hits, from the oracle evaluator and brute force."""
    records = [m.to_record() for m in loaded.metas]
    matches = {r["DatasetFileMetaId"] for r in select_rows(query, records)}
    scored = [(file_id(i), float(VECTORS[i] @ vector)) for i in range(N)
              if file_id(i) in matches and i % 50 != 0]
    scored = [h for h in scored if threshold is None or h[1] > threshold]
    scored.sort(key=lambda h: (-h[1], h[0]))
    return scored if top_k is None else scored[:top_k]
