"""``mmdm quickstart`` (the whole pipeline through Airflow on embedded defaults) and
``mmdm eval`` (Precision@k of an embedding model on a labelled set)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from . import context
from .output import out

if TYPE_CHECKING:
    from mmdm.adapters.models.base import Embedder


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import quickstart

    if args.metadata:
        os.environ["MMDM_METADATA_URL"] = args.metadata
    return quickstart(context.workspace(args), per_scene=args.per_scene)


def _eval_embedder(args: argparse.Namespace) -> Embedder:
    if args.connection == "local":  # no Airflow needed, and --dimension is honoured
        from mmdm.adapters.models import open_embedder

        return open_embedder("local", dimension=args.dimension)
    from mmdm.airflow_plugin.hooks.models import embedder_for  # imports Airflow: only when needed

    return embedder_for(args.connection, args.model, args.dimension)


def cmd_eval(args: argparse.Namespace) -> int:
    from mmdm.adapters.evaluation import Calls, evaluate_embedding  # loads the model clients

    result = evaluate_embedding(
        args.data, _eval_embedder(args), prefix=args.prefix, features=args.features,
        queries=args.queries, exemplars_per_tag=args.exemplars,
        calls=Calls(max_concurrency=args.concurrency),
        progress=lambda p: print(f"  … {p}", file=sys.stderr, flush=True))
    for problem in result.problems:
        print(f"  left out: {problem}", file=sys.stderr)
    if args.report:
        result.write_report(args.report)
    out(json.dumps(result.to_dict()) if args.json else result.table())
    return 0 if not result.problems else 3


def add_commands(sub, command) -> None:  # type: ignore[no-untyped-def]
    qs = command(sub, "quickstart", cmd_quickstart,
                 "sample images through the whole pipeline, in Airflow")
    qs.add_argument("--per-scene", type=int, default=8, help="images per sample folder")
    ev = command(sub, "eval", cmd_eval, "Precision@k of an embedding model on a labelled set "
                                        "(dataset.jsonl + images/)")
    ev.add_argument("--data", required=True, help="folder holding dataset.jsonl and images/")
    ev.add_argument("--connection", default="local",
                    help="Airflow connection id (mmdm_dashscope / mmdm_eas / mmdm_openai / "
                         "mmdm_clip), or 'local' for the offline model (default)")
    ev.add_argument("--model", help="model name on the connection")
    ev.add_argument("--dimension", type=int, help="vector size where the model offers several")
    ev.add_argument("--prefix", default="", help="text sent before each tag (an instruction)")
    ev.add_argument("--features", help="feature file (JSONL) caching vectors between runs")
    ev.add_argument("--queries", choices=["auto", "text", "image"], default="auto",
                    help="tag text, or the mean of exemplar images (image-only models); "
                         "auto picks text when the model can embed it")
    ev.add_argument("--exemplars", type=int, default=3,
                    help="image queries: ground-truth images per tag that make its query")
    ev.add_argument("--report", help="write the per-tag report (JSON lines) here")
    ev.add_argument("--concurrency", type=int, default=4, help="embedding calls in flight")
    ev.add_argument("--json", action="store_true", help="print the table as JSON")
