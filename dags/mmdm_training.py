"""A training DAG scheduled on the dataset pipeline's export Asset.

It reads the manifest named by the Asset event, loads the exported rows through mmdm's
loader (a map-style dataset a PyTorch DataLoader takes as it is) and reports what it got.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow.sdk import DAG, task

from mmdm.airflow_plugin.assets import export_asset

EXPORT = export_asset("dataset_pipeline")

with DAG(dag_id="mmdm_training", schedule=[EXPORT], catchup=False, tags=["mmdm"],
         doc_md=__doc__) as dag:

    @task(inlets=[EXPORT])
    def load_export(*, inlet_events: Any = None) -> dict[str, Any]:
        from mmdm.adapters.export import ExportDataset

        events = inlet_events[EXPORT]
        if not events:
            raise ValueError("no export event to train on")
        extra = events[-1].extra
        data = ExportDataset(extra["ManifestUri"])
        tags = Counter(t for i in range(len(data)) for t in data[i]["tags"])
        first = data[0] if len(data) else None
        return {"ManifestUri": extra["ManifestUri"], "Rows": len(data),
                "ExpectedRows": extra["RowCount"], "TopTags": dict(tags.most_common(5)),
                "FirstImageSize": list(first["image"].size) if first else None}

    load_export()
