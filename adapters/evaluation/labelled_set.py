"""Reading a labelled set in PAI's layout: ``dataset.jsonl`` next to an ``images/`` folder.

Each line is ``{"image_id": "...", "tags": ["...", ...]}``. As in the seed's script, an image's
id is the text of ``image_id`` before its first ``.`` (``c909f3df.jpg`` -> ``c909f3df``), every
tag is whitespace-stripped, and a tag's ground truth is a *list*: a tag written twice on one
image, or an image listed on two lines, counts twice.

The seed reads only ``images/<id>.jpg``. Here ``images/<id>.<ext>`` is looked up for each of
IMAGE_EXTENSIONS in that order (the extension in lower then upper case) and the first file
found is used, so a folder of PNGs or WebPs works as is.

A line that cannot be read, a tag entry that is not a non-empty string, or an id that could
name a file outside ``images/`` is reported as a ``Problem`` and skipped; reading goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import NotFoundError
from ..models.base import ImageInput
from .result import Problem

DATASET_FILE = "dataset.jsonl"
IMAGES_DIR = "images"
# Optional, for image queries: {"tag": "...", "image_ids": ["...", ...]} per line.
EXEMPLARS_FILE = "exemplars.jsonl"
# The supported image formats, in lookup order: the seed's .jpg first.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff")
_CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                  "bmp": "image/bmp", "webp": "image/webp", "gif": "image/gif",
                  "tif": "image/tiff", "tiff": "image/tiff"}


@dataclass
class LabelledSet:
    root: Path
    image_ids: list[str]  # distinct ids, in order of first appearance: the ranked corpus
    ground_truth: dict[str, list[str]]  # tag -> image ids, one entry per occurrence
    problems: list[Problem] = field(default_factory=list)


def image_key(image_id: str) -> str:
    """The seed's id: ``image_id`` up to its first ``.``."""
    return image_id.split(".")[0]


def _unsafe_key(key: str) -> str | None:
    """Why ``key`` may not name a file under ``images/``, or None if it may."""
    if not key:
        return "the id is empty once its extension is removed"
    if "\\" in key or "\x00" in key or PurePosixPath(key).is_absolute():
        return "the id must be a relative name inside images/"
    return None


def read_labelled_set(root: str | Path) -> LabelledSet:
    """Parse ``dataset.jsonl`` under ``root``; unreadable lines become problems.

    Raises:
        NotFoundError: ``root`` has no ``dataset.jsonl`` or no ``images/`` folder.
    """
    root = Path(root)
    path = root / DATASET_FILE
    if not path.is_file():
        raise NotFoundError(f"no {DATASET_FILE} in {root}")
    if not (root / IMAGES_DIR).is_dir():  # one clear error rather than one per image
        raise NotFoundError(f"no {IMAGES_DIR}/ folder in {root}")
    labelled = LabelledSet(root, [], {})
    seen: set[str] = set()
    for number, line in _json_lines(path, labelled.problems):
        where = f"{DATASET_FILE} line {number}"
        image_id, tags = line.get("image_id"), line.get("tags")
        if not isinstance(image_id, str):
            labelled.problems.append(Problem("line", where, "image_id must be a string"))
            continue
        if not isinstance(tags, list):
            labelled.problems.append(Problem("line", where, "tags must be a list of strings"))
            continue
        key = image_key(image_id)
        unsafe = _unsafe_key(key)
        if unsafe:
            labelled.problems.append(Problem("line", where, f"{image_id!r}: {unsafe}"))
            continue
        if key not in seen:
            seen.add(key)
            labelled.image_ids.append(key)
        for tag in tags:
            text = tag.strip() if isinstance(tag, str) else ""
            if not text:
                labelled.problems.append(Problem(
                    "line", where, f"tag {tag!r} skipped: tags must be non-empty strings"))
                continue
            labelled.ground_truth.setdefault(text, []).append(key)
    return labelled


def read_exemplars(root: str | Path, problems: list[Problem]) -> dict[str, list[str]] | None:
    """``exemplars.jsonl``'s tag -> exemplar image ids (extension stripped), or None when the
    file is absent. Lines for the same tag add up; bad lines and ids become problems."""
    path = Path(root) / EXEMPLARS_FILE
    if not path.is_file():
        return None
    exemplars: dict[str, list[str]] = {}
    for number, line in _json_lines(path, problems):
        where = f"{EXEMPLARS_FILE} line {number}"
        tag, ids = line.get("tag"), line.get("image_ids")
        if not isinstance(tag, str) or not tag.strip() or not isinstance(ids, list):
            problems.append(Problem("line", where, 'expected {"tag": "...", "image_ids": [...]}'))
            continue
        chosen = exemplars.setdefault(tag.strip(), [])
        for image_id in ids:
            key = image_key(image_id) if isinstance(image_id, str) else ""
            unsafe = _unsafe_key(key)
            if unsafe:
                problems.append(Problem("line", where, f"{image_id!r}: {unsafe}"))
            elif key not in chosen:
                chosen.append(key)
    return exemplars


def _json_lines(path: Path, problems: list[Problem]):
    """(line number, object) for each line that holds a JSON object; blank lines are skipped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                problems.append(Problem("line", f"{path.name} line {number}", "not UTF-8"))
                continue
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                problems.append(Problem("line", f"{path.name} line {number}",
                                        f"not valid JSON ({exc.msg})"))
                continue
            if not isinstance(value, dict):
                problems.append(Problem("line", f"{path.name} line {number}",
                                        "not a JSON object"))
                continue
            yield number, value


def find_image_file(images_dir: Path, key: str) -> Path | None:
    """``images/<key>.<ext>`` for the first extension of IMAGE_EXTENSIONS that exists."""
    for ext in IMAGE_EXTENSIONS:
        for suffix in (ext, ext.upper()):
            candidate = images_dir / f"{key}.{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_image(path: Path, uri: str) -> ImageInput:
    """The file's bytes as a model input; the content type follows the extension.

    Raises:
        OSError: the file cannot be read.
    """
    ext = path.suffix.lstrip(".").lower()
    return ImageInput(uri, path.read_bytes(), _CONTENT_TYPES.get(ext, "image/jpeg"))
