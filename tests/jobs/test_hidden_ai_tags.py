"""A tag the user hid (``user-delete-ai-tags``) stays hidden whatever the tagging jobs do:
a re-tag that finds it again, a revert, another definition."""

from __future__ import annotations

from PIL import Image

from mmdm.adapters.jobs import run_revert_job, run_tagging_job
from mmdm.adapters.models import LOCAL_TAG_DEFINITION, LocalPixelTagger
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.search import SearchService
from mmdm.query import parse


def _version(store, tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i, rgb in enumerate([(220, 20, 20), (215, 25, 30), (20, 30, 220)]):
        Image.new("RGB", (64, 48), rgb).save(root / f"{i}.png")
    ds = store.create_dataset("hidden", root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    for name in ("pixels", "pixels-again"):
        store.create_prompt(name, LOCAL_TAG_DEFINITION.tags,
                            guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    return ds.dataset_id


def _file(store, ds, name):
    return next(m for m in store.iter_file_metas(ds, "v1") if m.file_name == name)


def _matches(store, ds, dsl):
    page = SearchService(store).search(ds, "v1", parse(dsl))
    return sorted(m.file_name for m, _ in page.items)


def test_a_hidden_ai_tag_stays_hidden_after_retag_revert_and_another_definition(store, tmp_path):
    ds = _version(store, tmp_path)
    tagger = LocalPixelTagger()
    run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", mode="Full")
    red = _file(store, ds, "0.png")
    hidden = red.tags_ai[0]
    assert hidden in red.tags_all and "0.png" in _matches(store, ds, f"Tags.all='{hidden}'")
    store.update_user_tags(red.file_meta_id, deleted_add=[hidden])

    def still_hidden() -> None:
        now = _file(store, ds, "0.png")
        assert hidden in now.tags_user_delete_ai and hidden not in now.tags_all
        assert "0.png" not in _matches(store, ds, f"Tags.all='{hidden}'")

    still_hidden()
    retag = run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels", mode="Full")
    assert hidden in _file(store, ds, "0.png").tags_ai  # the model found it again...
    still_hidden()                                       # ...and the user's choice holds
    run_tagging_job(store, ds, "v1", tagger=tagger, prompt="pixels-again", mode="Full")
    still_hidden()
    run_revert_job(store, ds, "v1", tag_job_id=retag.job_id)
    still_hidden()
    assert hidden in _file(store, ds, "1.png").tags_all  # the other red file was not touched
