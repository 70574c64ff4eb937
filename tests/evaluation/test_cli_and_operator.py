"""``mmdm eval`` and EvaluateEmbeddingOperator, on a generated set and on the fake DashScope."""

from __future__ import annotations

import json
import re

import pytest

from mmdm.adapters.evaluation import evaluate_embedding, write_synthetic_set
from mmdm.adapters.models import LocalImageEmbedder
from mmdm.airflow_plugin.cli import main
from tests.fakes.fake_dashscope import FakeDashScope

from .dashscope_set import PREFIX, build_set, expected_precision

ROW = re.compile(r"^Precision@(\d+)\s+(\S+)\s+\((\d+) tags?\)$")


@pytest.fixture(scope="module")
def colour_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    write_synthetic_set(root, per_hue=6, seed=1)  # 48 images
    return root


def table_rows(text: str) -> dict[int, tuple[float | None, int]]:
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            value = None if match[2] == "n/a" else float(match[2])
            rows[int(match[1])] = (value, int(match[3]))
    return rows


def expected_rows(result) -> dict[int, tuple[float | None, int]]:
    return {k: (None if v is None else round(v, 4), result.counts[k])
            for k, v in result.precision.items()}


def test_eval_prints_the_table_for_the_local_model(colour_set, tmp_path, capsys):
    features, report = tmp_path / "features.jsonl", tmp_path / "report.jsonl"
    direct = evaluate_embedding(colour_set, LocalImageEmbedder())

    code = main(["eval", "--data", str(colour_set), "--connection", "local",
                 "--features", str(features), "--report", str(report)])

    out = capsys.readouterr().out
    assert code == 0
    assert table_rows(out) == expected_rows(direct)
    assert set(table_rows(out)) == {1, 5, 10, 50, 100}
    assert "image queries" in out and "tags scored 10 of 10" in out
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["tag"] for line in lines] == [r.tag for r in direct.tags]
    assert all(len(line["preds"]) == 10 and line["exemplars"] for line in lines)

    code = main(["eval", "--data", str(colour_set), "--features", str(features), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0
    assert again["from_cache"]["images"] == 48 and again["embedded_now"]["images"] == 0
    assert again["precision"] == {str(k): v for k, v in direct.precision.items()}


def test_eval_honours_the_local_dimension_and_reports_problems(colour_set, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "images").symlink_to(colour_set / "images")
    text = (colour_set / "dataset.jsonl").read_text()
    (broken / "dataset.jsonl").write_text(text + '{"image_id": "gone.jpg", "tags": ["red"]}\n'
                                          "not json\n")

    code = main(["eval", "--data", str(broken), "--dimension", "64"])

    captured = capsys.readouterr()
    assert code == 3  # the table is still printed; the exit status says items were left out
    assert "(64 dims)" in captured.out and table_rows(captured.out)[1][1] == 10
    assert "left out: image gone" in captured.err
    assert "left out: line dataset.jsonl line 50" in captured.err


def test_eval_through_an_airflow_connection(tmp_path, capsys, monkeypatch,
                                            fake_dashscope: FakeDashScope):
    files = build_set(tmp_path / "set")
    monkeypatch.setenv("AIRFLOW_CONN_EVAL_DASHSCOPE", json.dumps({
        "conn_type": "mmdm_dashscope", "password": fake_dashscope.api_key,
        "host": fake_dashscope.base_url}))

    code = main(["eval", "--data", str(tmp_path / "set"), "--connection", "eval_dashscope",
                 "--model", "multimodal-embedding-v1", "--prefix", PREFIX])

    out = capsys.readouterr().out
    assert code == 0
    expected = expected_precision(files)
    rows = table_rows(out)
    assert {k: v for k, (v, _) in rows.items()} == {
        k: (None if v is None else round(v, 4)) for k, v in expected.items()}
    assert fake_dashscope.calls["embedding"] == 12 + 5


def test_operator_returns_the_table_as_small_json(colour_set, tmp_path):
    from mmdm.airflow_plugin.operators.evaluate import EvaluateEmbeddingOperator

    op = EvaluateEmbeddingOperator(task_id="evaluate_embedding", data=str(colour_set),
                                   features=str(tmp_path / "f.jsonl"),
                                   report=str(tmp_path / "r.jsonl"))
    out = op.execute(context={})

    direct = evaluate_embedding(colour_set, LocalImageEmbedder())
    assert out["precision"] == {str(k): v for k, v in direct.precision.items()}
    assert out["tags_counted"] == {str(k): v for k, v in direct.counts.items()}
    assert out["model"] == "local-descriptor-v1" and out["queries"] == "image"
    assert len(json.dumps(out)) < 1000  # no vectors, no per-tag lists
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 10


def test_operator_fails_for_good_on_a_missing_set(tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from mmdm.airflow_plugin.operators.evaluate import EvaluateEmbeddingOperator

    op = EvaluateEmbeddingOperator(task_id="evaluate_embedding", data=str(tmp_path / "none"),
                                   embedding_conn_id="local")
    with pytest.raises(AirflowFailException, match="dataset.jsonl"):
        op.execute(context={})


def test_eval_runs_on_an_openai_compatible_connection(airflow_db, colour_set, fake_openai,
                                                      monkeypatch, capsys):
    """``mmdm eval --connection`` with an ``mmdm_openai`` connection: every image and tag text
    goes to the server through the real client, and the table's figures are what the
    library computes from the same vectors."""
    from mmdm.airflow_plugin.hooks.models import embedder_for

    monkeypatch.setenv("AIRFLOW_CONN_VLLM", json.dumps({
        "conn_type": "mmdm_openai", "host": fake_openai.base_url,
        "password": fake_openai.api_key,
        "extra": {"embedding_model": "gme-2b", "dimension": 64, "image_input": "data-uri"}}))
    code = main(["eval", "--data", str(colour_set), "--connection", "vllm", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["embedded_now"]["images"] == 48
    sent = fake_openai.requests_to("/v1/embeddings")
    images = sum(len(r.body["input"]) for r in sent if r.body.get("modality") == "image")
    texts = [t for r in sent if "modality" not in r.body for t in r.body["input"]]
    assert images == 48 and texts  # the tag queries, as text
    direct = evaluate_embedding(colour_set, embedder_for("vllm"))
    assert out["precision"] == {str(k): v for k, v in direct.precision.items()}
