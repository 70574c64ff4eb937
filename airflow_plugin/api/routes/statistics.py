"""GetDatasetFileMetasStatistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from .. import deps
from ..context import ApiContext
from ..statistics import AGGREGATES, file_meta_stats

router = APIRouter(prefix="/api/v1/statistics/datasets", tags=["statistics"])


@router.get("/{DatasetId}/datasetfilemetas")
def file_meta_statistics(
    DatasetId: str,
    DatasetVersion: str | None = None,
    AggregateBy: str | None = Query(None, description=f"one of {', '.join(AGGREGATES)}"),
    MaxResults: int = 10,
    WorkspaceId: str | None = None,
    ctx: ApiContext = Depends(deps.context),
) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    version = deps.version_name(store, ds.dataset_id, DatasetVersion)
    # PAI spells this response's request id ``requestId`` (the response class fills it).
    return {"requestId": None,
            **file_meta_stats(store, ds.dataset_id, version, AggregateBy, MaxResults)}
