"""The whole workflow with the ``mmdm`` command only, on a generated folder, each command a
process of its own on the workspace's embedded PostgreSQL: register, build, a tag definition
from YAML, tag, index, search (DSL, parameters, image), export, import into a logical dataset,
a logical version from a query, revert, jobs, deletes. Checks what each prints and returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmdm.adapters.samples import generate_samples

DEFINITION = """\
GuidePrompt: You sort photos by their main colour.
TagDefinition:
  red: mostly red
  green: mostly green
  blue: mostly blue
  white: mostly white
"""


class Mmdm:
    def __init__(self, workspace: Path):
        self.workspace = workspace

    def __call__(self, *args: str, rc: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "mmdm.airflow_plugin.cli",
                               "--workspace", str(self.workspace), *args],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == rc, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def json(self, *args: str, rc: int = 0):
        return json.loads(self(*args, "-o", "json", rc=rc).stdout)


@pytest.fixture(scope="module")
def mmdm(tmp_path_factory) -> Mmdm:
    root = tmp_path_factory.mktemp("cli")
    generate_samples(root / "photos", per_scene=2)  # 10 images and a corrupt .jpg
    (root / "colours.yaml").write_text(DEFINITION)
    return Mmdm(root / "workspace")


def test_the_whole_workflow_from_the_command_line(mmdm):
    photos = mmdm.workspace.parent / "photos"
    created = mmdm.json("datasets", "create", "--name", "photos", "--uri", str(photos))
    assert created["VersionName"] == "v1" and created["Uri"] == photos.as_uri()
    listed = mmdm("datasets", "list", "-o", "plain").stdout.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["photos"]

    # FileMetaBuild: the corrupt file fails alone; exit 3 says the job was PartialFailed.
    build = mmdm("build", "photos", "-o", "json", rc=3)
    record = json.loads(build.stdout)
    assert (record["Status"], record["CompletedFileCount"], record["FailedFileCount"]) == (
        "PartialFailed", 10, 1)
    assert "broken.jpg" in build.stderr and f"mmdm jobs show {record['DatasetJobId']}" in \
        build.stderr
    assert "… FileMetaBuild: 11" in build.stderr  # progress lines when not on a terminal

    definition = mmdm.json("tag-definitions", "create", "--name", "colours",
                           "--file", str(mmdm.workspace.parent / "colours.yaml"))
    assert definition["Revision"] == 1 and definition["Tags"] == 4
    shown = json.loads(mmdm("tag-definitions", "show", "colours").stdout)
    assert shown["TagDefinition"]["red"] == "mostly red"

    tag = mmdm("tag", "photos", "-t", "colours", "-o", "json")
    assert json.loads(tag.stdout)["CompletedFileCount"] == 10
    assert "… IntelligentTag: 10/10 files" in tag.stderr
    index = mmdm.json("index", "photos")
    assert index["Status"] == "Succeeded" and index["CompletedFileCount"] == 10

    # Search: a DSL page with its plan, every match, parameters, an image, a bad query.
    tagged = [m for m in mmdm.json("search", "photos", "--all") if m["Tags"] != json.dumps(
        {"ai": [], "user": [], "user-delete-ai-tags": []})]
    top = json.loads(tagged[0]["Tags"])["ai"][0]
    page = mmdm("search", "photos", f"Tags.ai='{top}'", "-n", "2", "--explain", "-o", "jsonl")
    rows = [json.loads(line) for line in page.stdout.splitlines()]
    matches = [m for m in tagged if top in json.loads(m["Tags"])["ai"]]
    assert len(rows) == min(2, len(matches))
    assert f"{len(matches)} matches" in page.stderr and "TAG plan" in page.stderr
    by_params = mmdm.json("search", "photos", "-p", f"QueryTagsIncludeAny={top}", "--all")
    assert {m["DatasetFileMetaId"] for m in by_params} == {m["DatasetFileMetaId"]
                                                           for m in matches}
    probe = sorted((photos / "red_bus").iterdir())[0]
    similar = mmdm.json("search", "photos", "--image", str(probe), "-p", "TopK=3")
    assert similar[0]["FileName"] == probe.name and similar[0]["Score"] > 0.99
    bad = mmdm("search", "photos", "FileName:", rc=2)
    assert bad.stderr.startswith("mmdm: error: 1:10:") and "^" in bad.stderr

    # Export what the DSL finds; a logical dataset imports it; a logical version by query.
    export = mmdm.json("export", "photos", "--query", f"Tags.ai='{top}'",
                       "--to", str(mmdm.workspace.parent / "out"))
    manifest = export["Result"]["ManifestUri"]
    assert export["Result"]["RowCount"] == len(matches)
    assert Path(manifest.removeprefix("file://")).is_file()
    mmdm("datasets", "create", "--name", "subset", "--uri",
         str(mmdm.workspace.parent / "out"), "--edition", "LOGICAL")
    imported = mmdm.json("import", "subset", "--from-manifest", manifest)
    assert imported["Status"] == "Succeeded" and imported["TotalFileCount"] == len(matches)
    assert len(mmdm.json("search", "subset", "--all")) == len(matches)
    v2 = mmdm.json("versions", "create", "photos", "--from-version", "v1", "--query",
                   "FileDir:'blue_car'")
    assert v2["DatasetVersion"] == "v2" and v2["Result"]["RowCount"] == 2
    versions = mmdm.json("versions", "list", "photos")
    assert [(v["VersionName"], v["VersionKind"], v["DataCount"]) for v in versions] == [
        ("v1", "STORAGE", 10), ("v2", "LOGICAL", 2)]

    # Revert the tagging job: on its own version, its tags are gone.
    tag_job = json.loads(tag.stdout)["DatasetJobId"]
    revert = mmdm.json("revert", "photos", "--job", tag_job)
    assert revert["DatasetVersion"] == "v1" and revert["Status"] == "Succeeded"
    assert mmdm.json("search", "photos", "-v", "v1", "-q", f"Tags.ai='{top}'", "--all") == []

    # Jobs: listed newest first, shown with failure reasons, logged; a finished one won't stop.
    jobs = mmdm.json("jobs", "list", "-d", "photos")
    assert {j["JobAction"] for j in jobs} == {
        "FileMetaBuild", "IntelligentTag", "SemanticIndex", "FileMetaExport", "FileMetaImport",
        "IntelligentTagRevert"}
    assert jobs[-1]["JobAction"] == "FileMetaBuild" and jobs[0]["JobAction"] == \
        "IntelligentTagRevert"
    shown = mmdm.json("jobs", "show", record["DatasetJobId"])
    assert [f["File"].rsplit("/", 1)[-1] for f in shown["FailedFiles"]] == ["broken.jpg"]
    logs = mmdm("jobs", "logs", tag_job).stdout.splitlines()
    assert logs[-1].endswith("Job finished: Succeeded, 10 done, 0 failed of 10")
    stop = mmdm("jobs", "stop", tag_job, rc=2)
    assert stop.stderr == f"mmdm: error: job {tag_job} is Succeeded: only a Pending or " \
                          "Running job can be stopped\n"

    # User errors: one line, exit 2.
    missing = mmdm("build", "nope", rc=2)
    assert missing.stderr == "mmdm: error: no dataset with id or name 'nope'\n"
    taken = mmdm("datasets", "create", "--name", "photos", "--uri", str(photos), rc=2)
    assert taken.stderr == "mmdm: error: a dataset named 'photos' exists already\n"

    mmdm("versions", "delete", "photos", "v2")
    mmdm("datasets", "delete", "subset")
    assert [d["Name"] for d in mmdm.json("datasets", "list")] == ["photos"]
    assert [v["VersionName"] for v in mmdm.json("versions", "list", "photos")] == ["v1"]


def test_a_terminal_gets_a_progress_bar_and_a_table(mmdm):
    """On a terminal a job draws rich's bar (done/total, rate, time left) and lists print as
    tables; the same commands piped print plain lines (the test above)."""
    import os
    import pty

    mmdm("datasets", "create", "--name", "tty", "--uri",
         str(mmdm.workspace.parent / "photos"))
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mmdm.airflow_plugin.cli", "--workspace",
                             str(mmdm.workspace), "build", "tty"],
                            stdin=secondary, stdout=secondary, stderr=secondary,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 3  # the corrupt file: PartialFailed
    os.close(primary)
    import re

    screen = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode(errors="replace"))
    # A scan streams its listing, so its total is open ("11/?"); the rate shows as it goes.
    assert re.search(r"FileMetaBuild ━+ 11/", screen) and "files/s" in screen
    assert "━" in screen  # the bar itself
    assert "… FileMetaBuild:" not in screen  # not the piped form
