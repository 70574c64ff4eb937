"""Standalone server without Airflow: ``python -m mmdm.airflow_plugin.api [--workspace DIR]``.

Serves the embedded defaults (the workspace's database, vectors and the local model, as
``mmdm quickstart`` leaves them). It makes a token at start and prints the gallery's URL with
it (``--token`` or ``MMDM_API_TOKEN`` to choose one, ``--no-auth`` to turn the check off), and
answers only the Host names it serves (``--allowed-host`` adds one, e.g. behind a proxy).
Datasets created through the API must lie under a data root (``--data-root``), exports under
an export root (``--export-root``). CreateDatasetJob's jobs run in this process, on the offline
model and the workspace's vector store.
Alibaba Cloud's PAI SDK connects with AccessKeyId ``--access-key-id`` (``MMDM_ACCESS_KEY_ID``,
default ``mmdm``) and the token as its AccessKeySecret; ``main`` prints the ``Config`` to use.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path

from fastapi import FastAPI

from .access import ACCESS_KEY_ID

LOCAL_NAMES = ["127.0.0.1", "localhost", "[::1]"]


def build_app(argv: list[str] | None = None) -> tuple[FastAPI, str]:
    """The app and the URL to open, from the command line."""
    from . import create_api_app, embedded_context

    parser = argparse.ArgumentParser(prog="python -m mmdm.airflow_plugin.api")
    parser.add_argument("--workspace", default=os.environ.get("MMDM_WORKSPACE", "mmdm-workspace"))
    parser.add_argument("--store-url", default=os.environ.get("MMDM_METADATA_URL"),
                        help="metadata store URL (default: the workspace's embedded "
                             "PostgreSQL)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", default=os.environ.get("MMDM_API_TOKEN"),
                        help="the token clients must send (default: a new random one)")
    parser.add_argument("--access-key-id",
                        default=os.environ.get("MMDM_ACCESS_KEY_ID", ACCESS_KEY_ID),
                        help="the AccessKeyId the PAI SDK signs with; its AccessKeySecret is "
                             f"the token (default: {ACCESS_KEY_ID})")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve without a token (only behind your own authentication)")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="a Host name clients may use besides the local ones and --host")
    parser.add_argument("--export-root", action="append", default=None,
                        help="a folder or oss:// prefix exports may be written under "
                             "(default: the workspace's exports/ and MMDM_EXPORT_ROOTS)")
    parser.add_argument("--data-root", action="append", default=None,
                        help="a folder or oss:// prefix CreateDataset may register "
                             "(default: the workspace and MMDM_DATA_ROOTS)")
    args = parser.parse_args(argv)
    workspace = Path(args.workspace).resolve()
    token = None if args.no_auth else (args.token or secrets.token_urlsafe(32))
    hosts = [*LOCAL_NAMES, *args.allowed_host]
    if args.host not in ("0.0.0.0", "::"):
        hosts.append(args.host)
    context = embedded_context(workspace, args.store_url, export_roots=args.export_root,
                               data_roots=args.data_root)
    app = create_api_app(context, token=token, allowed_hosts=hosts,
                         access_key_id=args.access_key_id)
    app.state.access_key_id = args.access_key_id  # for main's hint
    url = f"http://{args.host}:{args.port}/gallery" + (f"?token={token}" if token else "")
    return app, url


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    app, url = build_app(argv)
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    print(f"Gallery: {url}")
    # The token is printed once, in the URL above; the SDK's secret is that same token.
    secret = "<the token in the URL above>" if "token=" in url else "<any>"
    print(f"PAI SDK: Config(access_key_id={app.state.access_key_id!r}, "
          f"access_key_secret={secret}, endpoint={host_port!r}, protocol='http')")
    # After its graceful shutdown uvicorn re-raises SIGTERM under the handler it found; the
    # default one would end the process without exit handlers, and the workspace's embedded
    # PostgreSQL would keep running with a dead user. Exiting runs them: the server stops.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    uvicorn.run(app, host=host, port=int(port))


if __name__ == "__main__":
    main()
