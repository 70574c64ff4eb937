"""The ``mmdm`` command: a user error is one clear line and a documented exit code."""

from __future__ import annotations

from mmdm.airflow_plugin.cli import main


def test_registering_a_taken_name_prints_one_line_not_a_traceback(tmp_path, capsys):
    args = ["--metadata", f"sqlite:///{tmp_path}/m.db", "datasets", "create", "--name", "cars",
            "--uri", str(tmp_path)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    out = capsys.readouterr()
    assert out.err == "mmdm: error: a dataset named 'cars' exists already\n" and out.out == ""
