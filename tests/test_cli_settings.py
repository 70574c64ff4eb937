"""README: "Outside Airflow the CLI and library take the same settings: `--metadata
postgresql://…` or `MMDM_METADATA_URL`" -- and SQLite through `--metadata sqlite:///path.db`."""

from __future__ import annotations

from mmdm.adapters.metadata import open_store
from mmdm.airflow_plugin.cli import main


def _names(url: str) -> set[str]:
    store = open_store(url)
    try:
        return {ds.name for ds in store.list_datasets()}
    finally:
        store.close()


def test_the_cli_uses_mmdm_metadata_url_and_metadata_overrides_it(tmp_path, monkeypatch, capsys):
    env_db, flag_db = f"sqlite:///{tmp_path}/env.db", f"sqlite:///{tmp_path}/flag.db"
    monkeypatch.setenv("MMDM_METADATA_URL", env_db)
    assert main(["datasets", "create", "--name", "from-env", "--uri", str(tmp_path)]) == 0
    assert main(["--metadata", flag_db, "datasets", "create", "--name", "from-flag",
                 "--uri", str(tmp_path)]) == 0
    assert _names(env_db) == {"from-env"}
    assert _names(flag_db) == {"from-flag"}
    capsys.readouterr()
    assert main(["datasets", "list", "-o", "plain"]) == 0
    listed = capsys.readouterr().out
    assert "\tfrom-env\t" in listed and "from-flag" not in listed


def test_the_library_opens_the_store_mmdm_metadata_url_names(tmp_path, monkeypatch):
    from mmdm.adapters.metadata.embedded import workspace_store_url

    url = f"sqlite:///{tmp_path}/lib.db"
    monkeypatch.setenv("MMDM_METADATA_URL", url)
    store = open_store(workspace_store_url(tmp_path / "workspace"))
    try:
        store.create_dataset("lib", str(tmp_path))
        assert store.dialect == "sqlite"
    finally:
        store.close()
    assert _names(url) == {"lib"}
    assert not (tmp_path / "workspace" / "pg").exists()  # no embedded server was started
