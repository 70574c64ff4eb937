"""Synthetic file metas for ``bench/dsl.py``: deterministic rows, loaded fast.

Distributions (per row, seeded): 1 % DELETED; 90 % images, 5 % videos, 5 % PDFs; names
``<word>_<i>.<ext>`` (a few ``toyota.jpg``); 1,000 folders, ~1 % under ``blue_car``; update
times uniform over 2024-2025; sizes log-normal around 500 kB; 0-4 AI tags from a Zipf-like
vocabulary (popular words, then ``tag-0`` .. ``tag-4999`` getting rarer); 20 % of rows with
user tags (``rainy days`` among them), 2 % hiding an AI tag; 30 % with a description; images
carry ``MetaAttributes.ImageWidth/ImageHeight``; 60 % indexed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from psycopg.types.json import Jsonb

COLUMNS = (
    "file_meta_id", "dataset_id", "dataset_version", "uri", "file_name", "file_dir",
    "file_name_folded", "file_dir_folded", "data_size", "file_fingerprint", "file_create_time",
    "file_update_time", "file_type", "content_type", "meta_attributes", "description",
    "description_folded", "tags_ai", "tags_user", "tags_user_delete_ai", "tags_all",
    "semantic_index_job_id", "semantic_index_update_time", "tag_update_time", "sync_time",
    "status",
)
_LIST_COLUMNS = ("tags_ai", "tags_user", "tags_user_delete_ai", "tags_all")
POPULAR = ["car", "road", "lane line", "barrier gate", "sunny day", "person", "tree", "truck"]
VOCABULARY = POPULAR + [f"tag-{k}" for k in range(5000)]
WORDS = ["cat", "dog", "car", "street", "bus", "bike", "tree", "house", "sign", "lamp"]
START_MS, SPAN_MS = 1_704_067_200_000, 731 * 86_400_000  # 2024-01-01 .. 2025-12-31
KINDS = [("image", "image/jpeg", "jpg")] * 12 + [("image", "image/png", "png")] * 6 + [
    ("video", "video/mp4", "mp4"), ("application", "application/pdf", "pdf")]


def _tag(rng: random.Random) -> str:
    # Index ~ 8 * Pareto: popular words are common, tag-k gets rarer with k.
    k = int(rng.paretovariate(0.9)) - 1
    return VOCABULARY[min(k, len(VOCABULARY) - 1)]


def _dir(i: int) -> str:
    k = (i * 7919) % 1000
    if k < 10:
        return f"cars/blue_car/2025/{k}"
    return f"{WORDS[k % 10]}s/{k // 10}/batch_{k}"


def record(i: int, dataset_id: str, rng: random.Random) -> dict[str, Any]:
    """One row as ``COLUMNS`` -> value (lists and dicts as Python objects)."""
    kind, content_type, ext = KINDS[rng.randrange(len(KINDS))]
    name = "toyota.jpg" if i % 5003 == 0 else f"{WORDS[i % 10]}_{i}.{ext}"
    folder = _dir(i)
    ai = list(dict.fromkeys(_tag(rng) for _ in range(rng.randrange(5))))
    user = ["rainy days"] if rng.random() < 0.05 else (
        [_tag(rng)] if rng.random() < 0.15 else [])
    deleted = [ai[0]] if ai and rng.random() < 0.02 else []
    update = START_MS + rng.randrange(SPAN_MS)
    described = rng.random() < 0.3
    description = (f"a {rng.choice(['red', 'blue', 'white'])} {WORDS[i % 10]} on the "
                   f"{rng.choice(['road', 'grass', 'beach'])}") if described else None
    meta = ({"ImageWidth": rng.choice([640, 1280, 1920, 4000, 8000]),
             "ImageHeight": rng.choice([480, 720, 1080, 3000])} if kind == "image" else {})
    indexed = rng.random() < 0.6
    return {
        "file_meta_id": f"dfm-{i:09d}", "dataset_id": dataset_id, "dataset_version": "v1",
        "uri": f"oss://bench/{folder}/{name}" if name != "toyota.jpg"
        else f"oss://bench/{folder}/{i}/toyota.jpg",
        "file_name": name, "file_dir": folder, "file_name_folded": name.casefold(),
        "file_dir_folded": folder.casefold(),
        "data_size": int(rng.lognormvariate(13, 1.2)), "file_fingerprint": f"etag-{i}",
        "file_create_time": update - rng.randrange(86_400_000), "file_update_time": update,
        "file_type": kind, "content_type": content_type, "meta_attributes": meta,
        "description": description,
        "description_folded": description.casefold() if description is not None else None,
        "tags_ai": ai, "tags_user": user, "tags_user_delete_ai": deleted,
        "tags_all": [t for t in dict.fromkeys(ai + user) if t not in deleted],
        "semantic_index_job_id": "dsjob-1" if indexed else None,
        "semantic_index_update_time": update + 1000 if indexed else None,
        "tag_update_time": update + 500 if ai else None, "sync_time": update + 100,
        "status": "DELETED" if i % 100 == 99 else "ACTIVE",
    }


def records(n: int, dataset_id: str, chunk: int = 50_000) -> Iterator[list[dict[str, Any]]]:
    """The ``n`` rows in chunks; row ``i`` is the same whatever the chunk size."""
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            rows.append(record(i, dataset_id, random.Random(i)))
        yield rows


def as_record(row: dict[str, Any]) -> dict[str, Any]:
    """The evaluator's row shape (``FileMeta.to_record()``) of a generated row."""
    return {
        "DatasetFileMetaId": row["file_meta_id"], "FileName": row["file_name"],
        "FileDir": row["file_dir"], "DataSize": row["data_size"],
        "FileCreateTime": row["file_create_time"], "FileUpdateTime": row["file_update_time"],
        "FileType": row["file_type"], "ContentType": row["content_type"],
        "MetaAttributes": row["meta_attributes"], "Description": row["description"],
        "Tags": {"ai": row["tags_ai"], "user": row["tags_user"],
                 "user-delete-ai-tags": row["tags_user_delete_ai"]},
        "TagUpdateTime": row["tag_update_time"],
        "SemanticIndexJobId": row["semantic_index_job_id"],
        "SemanticIndexUpdateTime": row["semantic_index_update_time"],
        "SyncTime": row["sync_time"], "Status": row["status"],
    }


def pg_row(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(Jsonb(row[c]) if c == "meta_attributes" else row[c] for c in COLUMNS)


def sqlite_row(row: dict[str, Any]) -> tuple[Any, ...]:
    def value(c: str) -> Any:
        if c in _LIST_COLUMNS:
            return json.dumps(row[c], ensure_ascii=False) if row[c] else "[]"
        if c == "meta_attributes":
            return json.dumps(row[c], sort_keys=True)
        return row[c]

    return tuple(value(c) for c in COLUMNS)
