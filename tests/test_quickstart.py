"""README, "Two commands": `mmdm quickstart` runs the whole pipeline through Airflow on embedded
defaults and prints the jobs, the files built, tagged and indexed, a DSL search, an
image-to-image search and the export's manifest. Run as a user runs it: its own process, a
fresh workspace, no Airflow settings but its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


def test_the_quickstart_runs_the_pipeline_and_prints_what_it_did(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "MMDM_"))}  # the test session's are not a user's
    done = subprocess.run([sys.executable, "-m", "mmdm.airflow_plugin.cli", "--workspace",
                           str(tmp_path / "ws"), "quickstart", "--per-scene", "3"],
                          capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, (out[-2000:], done.stderr[-3000:])
    assert "DAG runs: {'pipeline': 'success', 'training': 'success'}" in out
    for action in ("FileMetaBuild", "IntelligentTag", "SemanticIndex", "FileMetaExport"):
        assert re.search(rf"^{action}\s+dsjob-\w+ (Succeeded|PartialFailed): \d+ done",
                         out, re.M), (action, out)
    files = re.search(r"^Files: (\d+), tagged: (\d+), vectors: (\d+)$", out, re.M)
    assert files and int(files[1]) == 15 and files[1] == files[2] == files[3], out
    dsl = re.search(r"^DSL search .*: (\d+) matches, e.g. \[(.*)\]$", out, re.M)
    assert dsl and int(dsl[1]) == 3 and dsl[2].count("green_park") == 3, out
    image = re.search(r"^Image search like (\S+): \[\('(\S+)', ([\d.]+)\)", out, re.M)
    assert image and image[1] == image[2] and float(image[3]) > 0.99, out  # itself, first
    export = json.loads(re.search(r"^Export: (\{.*\})$", out, re.M)[1])
    manifest = Path(export["ManifestUri"].removeprefix("file://"))
    assert manifest.is_file() and manifest.is_relative_to(tmp_path / "ws")
    assert export["RowCount"] == 15
