"""Standalone server without Airflow: ``python -m mmdm.airflow_plugin.api [--workspace DIR]``.

Serves the embedded defaults (SQLite, Milvus Lite and the local model in the workspace, as
``mmdm quickstart`` leaves them) with no login: bind it to localhost or put auth in front.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from . import create_api_app, embedded_context

    parser = argparse.ArgumentParser(prog="python -m mmdm.airflow_plugin.api")
    parser.add_argument("--workspace", default=os.environ.get("MMDM_WORKSPACE", "mmdm-workspace"))
    parser.add_argument("--store-url", default=os.environ.get("MMDM_METADATA_URL"),
                        help="metadata store URL (default: the workspace's embedded "
                             "PostgreSQL)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    app = create_api_app(embedded_context(Path(args.workspace).resolve(), args.store_url))
    print(f"Gallery: http://{args.host}:{args.port}/gallery")
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
