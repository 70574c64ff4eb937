"""One import namespace: the checkout's folders import as mmdm.*, and nothing else leaks out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_only_the_mmdm_namespace_is_importable(tmp_path):
    # A fresh interpreter outside the checkout sees only what the install put on its path.
    script = """
import importlib, json
found = {}
for name in ("mmdm.query", "mmdm.adapters", "mmdm.airflow_plugin", "query", "adapters",
             "airflow_plugin", "mmdm.tests", "mmdm.dags"):
    try:
        found[name] = importlib.import_module(name).__file__
    except ModuleNotFoundError:
        found[name] = None
print(json.dumps(found))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    found = json.loads(out)
    for name in ("query", "adapters", "airflow_plugin"):
        assert found[f"mmdm.{name}"] is not None, name
        assert found[name] is None, f"`import {name}` works outside the checkout"
    assert found["mmdm.tests"] is None and found["mmdm.dags"] is None


def test_the_checkout_has_no_bare_imports_of_its_packages():
    # `python -m pytest` puts the checkout on sys.path, where `import query` would still work
    # and load a second copy of the module: only mmdm.* may be imported.
    bare = re.compile(r"^\s*(from|import)\s+(query|adapters|airflow_plugin)\b", re.M)
    offenders = [str(p.relative_to(REPO)) for folder in
                 ("query", "adapters", "airflow_plugin", "dags", "tests", "bench")
                 for p in (REPO / folder).rglob("*.py") if bare.search(p.read_text("utf-8"))]
    assert offenders == []
