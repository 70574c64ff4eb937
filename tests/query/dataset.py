"""Twenty file metas in the row contract (``FileMeta.to_record()``), chosen to hit edges.

Missing attributes and nulls, empty tag groups, AI tags the user deleted (f09 also added
one by hand, which PAI's formula keeps hidden), unicode (CJK, emoji, accents, German sharp
s), quotes and backslashes, LIKE wildcards in values, boundary times, zero and int64-max sizes, MetaAttributes of every JSON type.
Two rows are DELETED (f09, f10). The expected ids in ``cases.py`` are written against this.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ms(text: str) -> int:
    """ISO-8601 (with offset) -> epoch milliseconds, computed independently of query/."""
    return round((datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH).total_seconds()
                 * 1000)


def rec(n: int, name: str, folder: str, *, ai: tuple[str, ...] = (), user: tuple[str, ...] = (),
        deleted: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "DatasetFileMetaId": f"f{n:02d}",
        "Uri": f"oss://bucket/data/{n:02d}/{name}",
        "FileName": name,
        "FileDir": folder,
        "DataSize": None, "FileFingerPrint": None, "FileCreateTime": None,
        "FileUpdateTime": None, "FileType": None, "ContentType": None, "MetaAttributes": {},
        "Comment": None, "Description": None, "TagUpdateTime": None,
        "SemanticIndexJobId": None, "SemanticIndexUpdateTime": None, "SyncTime": None,
        "Status": "ACTIVE",
        "Tags": {"ai": list(ai), "user": list(user), "user-delete-ai-tags": list(deleted)},
    }
    for key, value in fields.items():
        assert key in row, key
        row[key] = ms(value) if key.endswith(("Time",)) and isinstance(value, str) else value
    return row


JPEG = {"FileType": "image", "ContentType": "image/jpeg"}
PNG = {"FileType": "image", "ContentType": "image/png"}

RECORDS: list[dict[str, Any]] = [
    rec(1, "toyota.jpg", "cars/blue_car/2025", DataSize=12345, **JPEG,
        FileCreateTime="2025-03-01T00:00:00Z", FileUpdateTime="2025-03-10T08:00:00Z",
        SyncTime="2025-03-10T08:05:00Z", TagUpdateTime="2025-03-10T09:00:00Z",
        SemanticIndexUpdateTime="2025-03-11T00:00:00Z", SemanticIndexJobId="dsjob-1",
        ai=("lane line", "barrier gate", "sunny day"), user=("rainy days",),
        MetaAttributes={"ImageWidth": 800, "ImageHeight": 400},
        Description="A blue car on the highway", FileFingerPrint="etag-1", Comment="first"),
    rec(2, "honda.jpg", "cars/blue_car/2025", DataSize=2048, **JPEG,
        FileCreateTime="2025-03-02T00:00:00Z", FileUpdateTime="2025-04-01T12:00:00Z",
        SyncTime="2025-04-01T12:05:00Z", TagUpdateTime="2025-04-02T00:00:00Z",
        SemanticIndexUpdateTime="2025-04-03T00:00:00Z", SemanticIndexJobId="dsjob-1",
        ai=("lane line", "barrier gate"),
        MetaAttributes={"ImageWidth": 1920, "ImageHeight": 1080,
                        "Image": {"Width": 1920, "Height": 1080, "Channel": 3}}),
    rec(3, "Blue_Car_03.PNG", "cars/BLUE_CAR/archive", DataSize=4096, **PNG,
        FileUpdateTime="2025-05-30T09:27:29Z", TagUpdateTime="2025-05-30T10:00:00Z",
        ai=("lane line",), user=("barrier gate",), deleted=("lane line",),
        Description="blue car, parked"),
    rec(4, "O'Brien.jpg", "people", DataSize=1024, **JPEG,
        FileCreateTime="2025-02-01T00:00:00Z", FileUpdateTime="2025-02-28T00:00:00Z",
        SyncTime="2025-02-28T00:00:00.500Z", TagUpdateTime="2025-03-01T00:00:00Z",
        SemanticIndexUpdateTime="2025-03-02T00:00:00Z", SemanticIndexJobId="dsjob-2",
        ai=("person",), user=("rainy days", "Everett"), MetaAttributes={"ImageWidth": "800"},
        Description='He said "hi"'),
    rec(5, 'say "cheese".png', "people/smile", DataSize=0, **PNG,
        FileCreateTime="2024-12-31T23:59:59.999Z", FileUpdateTime="2024-12-31T23:59:59.999Z",
        MetaAttributes={"ImageWidth": 800.0}, Description=""),
    rec(6, "车道线.jpg", "道路/车道线", DataSize=5000, **JPEG,
        FileUpdateTime="2025-03-15T00:00:00+08:00", TagUpdateTime="2025-03-14T16:00:00Z",
        SemanticIndexUpdateTime="2025-03-15T00:00:00Z", SemanticIndexJobId="dsjob-3",
        ai=("车道线", "Lane line"), MetaAttributes={"Score": -1.5}, Description="车道线 检测"),
    rec(7, "STRASSE.jpg", "de/Straße", Description="Große Straße"),
    rec(8, "back\\slash.jpg", "odd/dir_with_underscore", DataSize=2**63 - 1,
        FileType="image", ContentType="image/webp", FileUpdateTime="2025-06-01T00:00:00Z",
        SemanticIndexUpdateTime="2025-06-02T00:00:00Z", SemanticIndexJobId="dsjob-2",
        ai=("50% off",), user=("a_b",), MetaAttributes={"flag": True, "n": None},
        Description="100% real_name"),
    rec(9, "video1.mp4", "videos", DataSize=104857600, FileType="video",
        ContentType="video/mp4", FileUpdateTime="2025-03-20T00:00:00Z",
        SemanticIndexUpdateTime="2025-03-21T00:00:00Z", SemanticIndexJobId="dsjob-1",
        ai=("water horse",), user=("water horse",), deleted=("water horse",),
        Description="fallen water horse", Status="DELETED"),
    rec(10, "deleted_toyota.jpg", "cars/blue_car/old", DataSize=100, **JPEG,
        FileUpdateTime="2025-03-05T00:00:00Z", SemanticIndexJobId="dsjob-1",
        ai=("lane line", "barrier gate"), Status="DELETED"),
    rec(11, "noext", "", DataSize=1, FileType="application", ContentType="application/pdf",
        FileUpdateTime="2025-01-16T11:52:56.000Z", user=("Cloudy day",),
        MetaAttributes={"pages": 12}),
    rec(12, "cat.png", "animals/cats", DataSize=2049, **PNG,
        FileUpdateTime="2025-01-16T11:52:56.001Z", TagUpdateTime="2025-01-16T12:00:00Z",
        SemanticIndexUpdateTime="2025-01-17T00:00:00Z", SemanticIndexJobId="dsjob-4",
        ai=("cat", "Cat"), user=("cat",), MetaAttributes={"Image": {"Width": 640, "Height": 480}}),
    rec(13, "dog.gif", "animals/dogs", DataSize=12346, FileType="image", ContentType="image/gif",
        FileUpdateTime="2025-02-01T00:00:00Z", SemanticIndexJobId="",
        ai=("dog", "sunny day"), deleted=("sunny day",), MetaAttributes={"Image": "n/a"}),
    rec(14, "ÉCOLE.jpg", "écoles", DataSize=777, **JPEG, FileUpdateTime="2025-04-15T00:00:00Z",
        ai=("école",), user=("École",), MetaAttributes={"ImageWidth": -5},
        Description="ÉCOLE primaire"),
    rec(15, "emoji_🚗.png", "cars/🚗", DataSize=3, **PNG, FileUpdateTime="2025-05-01T00:00:00Z",
        ai=("🚗",), user=("rainy days",), MetaAttributes={"ImageWidth": 800, "ImageHeight": 600}),
    rec(16, "UPPER.JPG", "Cars/Blue_Car", DataSize=12345, FileType="image",
        ContentType="image/JPEG", FileCreateTime="2025-03-01T00:00:00Z",
        FileUpdateTime="2025-03-10T08:00:00Z", SemanticIndexJobId="dsjob-5",
        ai=("Lane Line",), user=("lane line",), deleted=("Lane Line",)),
    rec(17, "lane line.jpg", "roads", DataSize=4097, **JPEG,
        FileUpdateTime="2025-05-29T00:00:00Z", ai=("lane line",),
        MetaAttributes={"ImageWidth": 0}),
    rec(18, "mystery", "unknown"),
    rec(19, "a%b_c.jpg", "percent%dir", DataSize=10, **JPEG,
        FileUpdateTime="2025-03-03T00:00:00Z", SemanticIndexJobId="dsjob-1",
        user=("barrier gate", "lane line"), Description="a_b%c"),
    rec(20, "toyota.jpg", "cars/red_car", DataSize=12345, **JPEG,
        FileCreateTime="2025-03-01T00:00:00Z", FileUpdateTime="2025-03-10T00:00:00Z",
        SemanticIndexJobId="dsjob-1", ai=("lane line", "barrier gate"), user=("rainy days",)),
]

ALL_IDS = frozenset(r["DatasetFileMetaId"] for r in RECORDS)
ACTIVE_IDS = frozenset(r["DatasetFileMetaId"] for r in RECORDS if r["Status"] == "ACTIVE")
