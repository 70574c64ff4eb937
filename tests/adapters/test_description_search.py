"""Description search, the Milvus + Qwen-VL guide's text-to-text and image-to-text modes: a
describing tagging job stores a description per image, a SemanticIndex job with contentList
["description"] embeds those texts as a second vector per file, in an index set of its own,
and ``IndexContent='description'`` ranks them by a query text or a query image.

Runs on SQLite with a vector store of its own and on PostgreSQL with pgvector in the
metadata's database (vectors written in the transaction that records them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, NotFoundError
from mmdm.adapters.index_sets import find_index_set, index_content, index_sets
from mmdm.adapters.jobs import run_index_job, run_tagging_job
from mmdm.adapters.metadata import open_store
from mmdm.adapters.models import DashScopeEmbedder, DashScopeTagger, LocalImageEmbedder
from mmdm.adapters.models.base import ImageInput
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.search import SearchService
from mmdm.adapters.vectors.pgvector import PgVectorStore
from mmdm.query import DslSemanticError, parse
from tests.fakes.numpy_vectors import NumpyVectorStore
from tests.jobs.conftest import make_version

FILES = 10


class Described:
    def __init__(self, url, store, dataset_id, embedder, vectors):
        self.url, self.store, self.dataset_id = url, store, dataset_id
        self.embedder, self.vectors = embedder, vectors
        self.search = SearchService(store, vector_store=vectors, embedder=embedder)

    def metas(self):
        return sorted(self.store.iter_file_metas(self.dataset_id, "v1"), key=lambda m: m.pk)

    def index(self, content: str, **kw):
        return run_index_job(self.store, self.dataset_id, "v1", embedder=self.embedder,
                             vector_store=self.vectors, content=content, **kw)

    def find(self, dsl: str):
        page = self.search.search(self.dataset_id, "v1", parse(dsl))
        return [(m.file_meta_id, score) for m, score in page.items], page.plan


@pytest.fixture(params=["sqlite", "postgres"])
def described(request, tmp_path, fake_dashscope):
    embedder = DashScopeEmbedder(api_key=fake_dashscope.api_key,
                                 base_url=fake_dashscope.base_url,
                                 model="tongyi-embedding-vision-plus", dimension=64)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/metadata.db"
        store = open_store(url)
        vectors = NumpyVectorStore(embedder.dimension, table="vectors")
    else:
        url = request.getfixturevalue("pgvector_dsn")
        store = open_store(url)
        vectors = PgVectorStore(store, "vectors", embedder.dimension)
    dataset_id = make_version(store, tmp_path / "images", FILES)
    tagger = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    run_tagging_job(store, dataset_id, "v1", tagger=tagger, prompt="driving", describe=True)
    state = Described(url, store, dataset_id, embedder, vectors)
    state.index("file")
    state.index("description")
    yield state
    store.close()


def test_descriptions_are_a_second_index_set_beside_the_images(described):
    sets = index_sets(described.store, described.dataset_id, "v1")
    assert sorted(s.content for s in sets) == ["description", "file"]
    assert len({s.index_set_id for s in sets}) == 2
    for index in sets:  # one vector per file in each, in one table
        assert described.vectors.count(index.index_set_id) == FILES
    assert find_index_set(described.store, described.dataset_id, "v1").content == "file"
    assert all(m.description for m in described.metas())  # the tagging job described them


def test_text_to_text_finds_the_file_whose_description_says_it(described):
    probe = described.metas()[3]
    text = probe.description.replace("'", "\\'")
    hits, plan = described.find(f"Content:'{text}' AND IndexContent='description' AND TopK=3")
    assert hits[0][0] == probe.file_meta_id and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert ":description" in plan
    # The same text against the images' vectors is another search: nothing scores 1.
    image_hits, _ = described.find(f"Content:'{text}' AND TopK=3")
    assert image_hits[0][1] < 0.9


def test_image_to_text_ranks_every_description_by_its_similarity_to_the_image(described):
    metas = described.metas()
    probe = metas[5]
    hits, _ = described.find(f"QueryImage='{probe.uri}' AND IndexContent='description' "
                             f"AND TopK={FILES}")
    # Ground truth from the model's own vectors: the image's against each description's.
    image = ImageInput(probe.uri, Path(url2pathname(urlparse(probe.uri).path)).read_bytes(),
                       "image/png")
    query = described.embedder.embed_images([image])[0]
    texts = np.stack(described.embedder.embed_texts([m.description for m in metas]))
    scores = texts @ query
    expected = [metas[i].file_meta_id for i in np.argsort(-scores, kind="stable")]
    assert [key for key, _ in hits] == expected
    by_key = {m.file_meta_id: s for m, s in zip(metas, scores)}
    assert [score for _, score in hits] == pytest.approx([by_key[k] for k, _ in hits], abs=1e-4)


def test_a_filter_narrows_a_description_search(described):
    metas = described.metas()
    keep = {m.file_meta_id for m in metas[:4]}
    names = " OR ".join(f"FileName='{m.file_name}'" for m in metas[:4])
    hits, _ = described.find(f"({names}) AND Content:'{metas[8].description}' "
                             "AND IndexContent='description' AND TopK=10")
    assert {key for key, _ in hits} == keep


def test_increment_follows_changed_removed_and_deleted_descriptions(described):
    store, metas = described.store, described.metas()
    changed, cleared, deleted = metas[0], metas[1], metas[2]
    store.execute("UPDATE file_metas SET description = ? WHERE pk = ?",
                  ("A red truck at night.", changed.pk))
    store.execute("UPDATE file_metas SET description = NULL WHERE pk = ?", (cleared.pk,))
    store.execute("UPDATE file_metas SET status = 'DELETED' WHERE pk = ?", (deleted.pk,))
    summary = described.index("description")
    assert (summary.total, summary.completed) == (1, 1)  # only the changed text is embedded
    assert summary.extra["RemovedVectors"] == 2
    assert store.get_job(summary.job_id).result["RemovedVectors"] == 2
    index = find_index_set(store, described.dataset_id, "v1", content="description")
    assert described.vectors.count(index.index_set_id) == FILES - 2
    hits, _ = described.find("Content:'A red truck at night.' AND IndexContent='description' "
                             "AND TopK=1")
    assert hits[0][0] == changed.file_meta_id and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    again = described.index("description")
    assert again.total == 0
    # The images' index did not see any of it: the deleted file is its only change.
    assert described.index("file").total == 0


def test_a_full_description_job_embeds_every_described_file_again(frozen_clock, described):
    """Even when the fixture's description job ended in the millisecond this one began."""
    summary = described.index("description", mode="Full")
    assert (summary.total, summary.completed, summary.failed) == (FILES, FILES, 0)


def test_describing_with_an_image_only_model_is_refused(described):
    local = LocalImageEmbedder()
    with pytest.raises(AdapterError, match="embeds images only"):
        run_index_job(described.store, described.dataset_id, "v1", embedder=local,
                      vector_store=NumpyVectorStore(local.dimension), content="description")


def test_a_version_without_a_description_index_says_how_to_make_one(described, tmp_path):
    store = described.store
    other = store.create_dataset("plain", (tmp_path / "images").as_uri()).dataset_id
    store.create_version(other)
    build_file_metas(store, other, "v1")
    run_index_job(described.store, other, "v1", embedder=described.embedder,
                  vector_store=described.vectors)
    with pytest.raises(NotFoundError, match=r"no index set of descriptions.*contentList"):
        described.search.search(other, "v1", parse("Content:'x' AND IndexContent='description'"))


def test_the_api_searches_descriptions_by_text_and_by_image(described, tmp_path):
    """ListDatasetFileMetas with IndexContent, as a parameter and in a QueryExpression."""
    from fastapi.testclient import TestClient

    from mmdm.airflow_plugin.api import create_api_app
    from mmdm.airflow_plugin.api.context import ApiContext

    def search(store):  # each worker thread's store, with the vectors the jobs wrote
        vectors = (PgVectorStore(store, "vectors", described.embedder.dimension)
                   if isinstance(described.vectors, PgVectorStore) else described.vectors)
        return SearchService(store, vector_store=vectors, embedder=described.embedder)

    context = ApiContext(lambda: open_store(described.url), search_factory=search,
                         workspace=tmp_path / "ws", data_roots=[(tmp_path / "images").as_uri()])
    url = f"/api/v1/datasets/{described.dataset_id}/datasetfilemetas"
    probe = described.metas()[7]
    with TestClient(create_api_app(context)) as client:
        sets = client.get(f"/api/v1/datasets/{described.dataset_id}/versions/v1/indexsets")
        assert sorted(s["Content"] for s in sets.json()["IndexSets"]) == ["description", "file"]
        by_text = client.get(url, params={"QueryText": probe.description, "TopK": 2,
                                          "IndexContent": "description"}).json()
        assert by_text["DatasetFileMetas"][0]["DatasetFileMetaId"] == probe.file_meta_id
        assert by_text["DatasetFileMetas"][0]["Score"] == pytest.approx(1.0, abs=1e-4)
        by_image = client.get(url, params={"QueryExpression": f"QueryImage='{probe.uri}' AND "
                                           "IndexContent='description' AND TopK=3"}).json()
        direct, _ = described.find(f"QueryImage='{probe.uri}' AND IndexContent='description' "
                                   "AND TopK=3")
        assert [m["DatasetFileMetaId"] for m in by_image["DatasetFileMetas"]] == [
            key for key, _ in direct]
        bad = client.get(url, params={"QueryText": "x", "IndexContent": "audio"})
        assert bad.status_code == 400 and "description" in bad.json()["Message"]


@pytest.mark.parametrize("content", [["audio"], ["file", "description"], "image", [1]])
def test_an_unknown_or_double_content_list_is_refused(content):
    with pytest.raises(AdapterError, match="contentList must be one of"):
        index_content({"contentList": content})


def test_index_content_is_an_option_with_two_values():
    assert parse("IndexContent='DESCRIPTION' AND Content:'x'").option("IndexContent") == \
        "description"
    with pytest.raises(DslSemanticError) as bad:
        parse("IndexContent='summary'")
    assert "description" in str(bad.value)
    with pytest.raises(DslSemanticError):
        parse("FileName:'a' OR IndexContent='file'")


def test_the_command_line_tags_indexes_and_searches_descriptions(tmp_path, fake_dashscope):
    """What a user types: tag --describe, index --content description, search."""
    images = tmp_path / "images"
    store = open_store(str(tmp_path / "metadata.db"))
    make_version(store, images, 6)
    store.close()
    env = {"AIRFLOW_CONN_DS": json.dumps({"conn_type": "mmdm_dashscope",
                                          "password": fake_dashscope.api_key,
                                          "host": fake_dashscope.base_url})}

    def mmdm(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mmdm.airflow_plugin.cli", "--workspace",
             str(tmp_path / "ws"), "--metadata", f"sqlite:///{tmp_path}/metadata.db", *args],
            capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    mmdm("tag", "faults", "-t", "driving", "--describe", "--connection", "ds")
    mmdm("index", "faults", "--connection", "ds", "--model", "multimodal-embedding-v1",
         "--content", "description")
    store = open_store(str(tmp_path / "metadata.db"))
    probe = sorted(store.iter_file_metas(
        store.get_dataset("faults").dataset_id, "v1"), key=lambda m: m.pk)[2]
    store.close()
    found = json.loads(mmdm("search", "faults", f"Content:'{probe.description}' AND "
                            "IndexContent='description' AND TopK=2", "-o", "json"))
    assert found[0]["DatasetFileMetaId"] == probe.file_meta_id
