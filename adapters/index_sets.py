"""A version's semantic indexes (PAI's SemanticIndex configuration), read from its index jobs.

Every SemanticIndex job records in its spec what embedded the files and where the vectors went:
model, dimension, table, and the connections of both. A version can be indexed several times
(two models, two tables, images and descriptions); each distinct ``indexSetId`` with a
successful job is one index set. The most recently indexed set of images is the version's
default, the most recently indexed set of descriptions the default for a search of
descriptions. A search names one or takes a default, and opens the model and the vector
store that index was built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import AdapterError, NotFoundError
from .metadata import MetadataStore

INDEXED_STATUSES = ("Succeeded", "PartialFailed")
INDEX_CONTENTS = ("file", "description")


def index_content(spec: dict[str, Any]) -> str:
    """What a SemanticIndex JobSpec embeds: its ``contentList`` (one entry; ``file`` when
    absent).

    Raises:
        AdapterError: an input error for an unknown content, or several in one job.
    """
    contents = spec.get("contentList") or ["file"]
    if isinstance(contents, str):
        contents = [contents]
    if (not isinstance(contents, list) or len(contents) != 1
            or contents[0] not in INDEX_CONTENTS):
        raise AdapterError(f"contentList must be one of {[[c] for c in INDEX_CONTENTS]}, not "
                           f"{contents!r}: index images and descriptions in two jobs",
                           is_input_error=True)
    return str(contents[0])


@dataclass(frozen=True)
class IndexSet:
    index_set_id: str
    embedding_model: str
    dimension: int
    table: str
    embedding_connection: str | None
    vector_connection: str | None
    job_id: str  # the newest successful job that wrote into it
    indexed_time: int  # when that job finished (epoch ms)
    content: str = "file"  # what was embedded: the image, or its description

    def to_pai(self, is_default: bool, supports_text: bool | None = None) -> dict[str, Any]:
        out = {"IndexSetId": self.index_set_id, "EmbeddingModel": self.embedding_model,
               "Dimension": self.dimension, "TableName": self.table,
               "EmbeddingConnectionId": self.embedding_connection,
               "DatabaseConnectionId": self.vector_connection,
               "DatasetJobId": self.job_id, "IsDefault": is_default,
               "Content": self.content}
        if supports_text is not None:
            out["SupportsText"] = supports_text
        return out


def index_sets(store: MetadataStore, dataset_id: str, version: str) -> list[IndexSet]:
    """The version's index sets, the most recently indexed first."""
    found: dict[str, IndexSet] = {}
    jobs = [j for j in store.list_jobs(dataset_id, version, "SemanticIndex")
            if j.status in INDEXED_STATUSES and j.job_spec.get("indexSetId")]
    for job in sorted(jobs, key=lambda j: j.finish_time or j.create_time, reverse=True):
        spec = job.job_spec
        key = str(spec["indexSetId"])
        if key not in found:
            found[key] = IndexSet(
                index_set_id=key, embedding_model=str(spec.get("embeddingModel", "")),
                dimension=int(spec.get("dimension") or 0),
                table=str(spec.get("databaseTableName", "")),
                embedding_connection=spec.get("embeddingConnectionId"),
                vector_connection=spec.get("databaseConnectionId"),
                job_id=job.job_id, indexed_time=job.finish_time or job.create_time,
                content=index_content(spec))
    return list(found.values())


def find_index_set(store: MetadataStore, dataset_id: str, version: str,
                   index_set_id: str | None = None, content: str = "file") -> IndexSet:
    """The named index set of the version, or its default for ``content``.

    Raises:
        NotFoundError: the version has no successful semantic index (of that content), or
            none by that id.
    """
    sets = index_sets(store, dataset_id, version)
    if not sets:
        raise NotFoundError(f"dataset {dataset_id!r} version {version!r} has no successful "
                            "SemanticIndex job: index it first")
    if index_set_id is None:
        for candidate in sets:
            if candidate.content == content:
                return candidate
        raise NotFoundError(
            f"dataset {dataset_id!r} version {version!r} has no index set of {content}s "
            f"(it has {', '.join(f'{s.index_set_id} ({s.content})' for s in sets)}): run a "
            f"SemanticIndex job with contentList [{content!r}]")
    for candidate in sets:
        if candidate.index_set_id == index_set_id:
            return candidate
    raise NotFoundError(f"dataset {dataset_id!r} version {version!r} has no index set "
                        f"{index_set_id!r}; it has {', '.join(s.index_set_id for s in sets)}")
