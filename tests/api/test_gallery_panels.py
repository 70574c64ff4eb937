"""The gallery runs the workflow, in Chromium: the jobs panel (start, live progress, per-file
failure reasons, stop), the tag-definition editor, statistics as charts, the description in the
viewer, and a sidebar that fits from 1280 to 1920 px. Screenshots go to ``.ci/artifacts/``
(``MMDM_E2E_ARTIFACTS``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mmdm.adapters.defaults import embedded_resources
from mmdm.adapters.jobs import run_tagging_job
from mmdm.adapters.models import open_tagger
from mmdm.airflow_plugin.api import create_api_app, embedded_context

from .conftest import build_dataset
from .live_server import serve
from .test_gallery_browser import ARGS, CHROMIUM, _chromium  # noqa: F401  (the browser check)

ARTIFACTS = Path(os.environ.get("MMDM_E2E_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / ".ci" / "artifacts"))
GATE = threading.Event()  # tagging waits on it: a job that runs until the test lets it go
GATE.set()


class GatedTagger:
    def __init__(self):
        self.inner = open_tagger("local")
        self.model = self.inner.model

    def tag(self, *args, **kwargs):
        GATE.wait(60)
        return self.inner.tag(*args, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A workspace of its own (its jobs change it), tagged once more with descriptions."""
    built = build_dataset(tmp_path_factory.mktemp("panels-workspace"), name="panels")
    run_tagging_job(built.store, built.dataset_id, "v1", tagger=open_tagger("local"),
                    prompt="pixel-statistics", mode="Full", describe=True)
    return built


@pytest.fixture(scope="module")
def page(built):
    from playwright import sync_api

    def resources(ctx):
        found = embedded_resources(ctx.workspace(), export_roots=ctx.export_roots(),
                                   default_export_dir=ctx.default_export_dir())
        found.tagger = lambda conn, model: GatedTagger()
        return found

    context = embedded_context(built.workspace)
    context._job_resources = resources
    with serve(create_api_app(context)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(20_000)
        page.goto(f"{url}/gallery")
        page.wait_for_selector(".card img")
        yield page
        browser.close()
    GATE.set()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"gallery-{name}.png"))


def _job_status(page, job_id: str) -> str:
    return page.text_content(f"tr[data-job='{job_id}'] td.status")


def test_the_jobs_panel_starts_follows_explains_and_stops_jobs(page, built):
    page.click("nav.tabs button[data-tab=jobs]")
    page.wait_for_selector("#jobs-rows tr")
    assert page.is_hidden("aside") and page.is_visible("#jobs-panel")

    # A build: the corrupt file's reason shows under the job once it ends.
    page.select_option("#job-action", "FileMetaBuild")
    assert page.is_hidden("#job-mode-label") and page.is_hidden("#job-definition-label")
    page.click("#job-start")
    page.wait_for_function("() => /^Started FileMetaBuild job dsjob-/.test("
                           "document.querySelector('#job-message').textContent)")
    build_id = page.text_content("#job-message").split()[3].rstrip(".")
    page.wait_for_function(f"() => document.querySelector(\"tr[data-job='{build_id}'] "
                           "td.status\")?.textContent === 'PartialFailed'")
    page.wait_for_selector("#job-failures")
    assert "broken.jpg" in page.text_content("#job-failures")
    assert "Job" in page.text_content("#job-logs")
    assert built.store.get_job(build_id).status == "PartialFailed"

    # A tagging job held by the model is Running with its progress bar; Stop ends it.
    GATE.clear()
    page.select_option("#job-action", "IntelligentTag")
    assert page.is_visible("#job-definition-label") and page.is_visible("#job-mode-label")
    page.select_option("#job-mode", "Full")
    page.click("#job-start")
    page.wait_for_function("() => /^Started IntelligentTag/.test("
                           "document.querySelector('#job-message').textContent)")
    tag_id = page.text_content("#job-message").split()[3].rstrip(".")
    page.wait_for_function(f"() => document.querySelector(\"tr[data-job='{tag_id}'] "
                           "td.status\")?.textContent === 'Running'")
    assert page.locator(f"tr[data-job='{tag_id}'] progress").count() == 1
    _shot(page, "jobs-running")
    page.click(f"tr[data-job='{tag_id}'] button.stop")
    GATE.set()
    page.wait_for_function(f"() => document.querySelector(\"tr[data-job='{tag_id}'] "
                           "td.status\")?.textContent === 'ManuallyStop'")
    assert built.store.get_job(tag_id).status == "ManuallyStop"
    assert page.locator(f"tr[data-job='{tag_id}'] button.stop").count() == 0
    page.wait_for_function(f"() => document.querySelector(\"tr[data-job='{tag_id}']\")"
                           ".children[6].textContent !== ''")  # followed to its finish
    _shot(page, "jobs")


def test_the_tag_definition_editor_creates_and_revises(page, built):
    page.click("nav.tabs button[data-tab=definitions]")
    page.wait_for_selector("#defs-list li")
    page.click("#def-new")
    page.fill("#def-name", "road-scenes")
    page.fill("#def-guide", "You know common road scenes.")
    page.locator(".def-tag").last.fill("crosswalk")
    page.locator(".def-text").last.fill("white parallel stripes across the road")
    page.click("#def-add-row")
    page.locator(".def-tag").last.fill("tunnel")
    page.locator(".def-text").last.fill("inside a tunnel")
    page.click("#def-save")
    page.wait_for_function("() => /^Saved road-scenes, revision 1/.test("
                           "document.querySelector('#def-message').textContent)")
    prompt = built.store.get_prompt("road-scenes")
    assert prompt.tag_definitions == {"crosswalk": "white parallel stripes across the road",
                                      "tunnel": "inside a tunnel"}
    assert prompt.guide_prompt == "You know common road scenes."

    page.click("#def-add-row")
    page.locator(".def-tag").last.fill("speed bump")
    page.locator(".def-text").last.fill("a yellow ridge across the lane")
    page.locator("#def-rows tr").first.locator("button").click()  # drop crosswalk
    page.click("#def-save")
    page.wait_for_function("() => /revision 2/.test("
                           "document.querySelector('#def-message').textContent)")
    assert page.get_attribute("#def-name", "readonly") is not None
    assert set(built.store.get_prompt("road-scenes").tag_definitions) == {"tunnel",
                                                                          "speed bump"}
    _shot(page, "tag-definitions")

    bad = page.locator(".def-tag")
    for i in range(bad.count()):
        bad.nth(i).fill("")
    page.click("#def-save")
    page.wait_for_function("() => /^Not saved: /.test("
                           "document.querySelector('#def-message').textContent)")
    assert built.store.get_prompt("road-scenes").revision == 2


def test_statistics_are_charts_and_a_tag_opens_its_files(page, built):
    page.click("nav.tabs button[data-tab=stats]")
    page.wait_for_selector("#chart-tags .bar-row")
    counts = {r.get_attribute("data-key"): int(r.locator(".n").inner_text())
              for r in page.locator("#chart-formats .bar-row").all()}
    expected = dict(built.store.fetchall(
        "SELECT content_type, COUNT(*) FROM file_metas WHERE dataset_id = ? AND "
        "dataset_version = 'v1' AND status = 'ACTIVE' GROUP BY content_type",
        (built.dataset_id,)))
    assert counts == {k: int(v) for k, v in expected.items()} and len(counts) >= 5
    dirs = page.locator("#chart-dirs .bar-row").count()
    assert dirs == 5 and "15 files" in page.text_content("#stats-total")
    widths = page.eval_on_selector_all("#chart-tags .bar", "bs => bs.map(b => b.style.width)")
    assert float(widths[0][:-1]) == 100 and all(float(w[:-1]) <= 100 for w in widths)
    _shot(page, "statistics")

    first = page.locator("#chart-tags .bar-row").first
    tag, n = first.get_attribute("data-key"), int(first.locator(".n").inner_text())
    first.locator("button.key").click()
    assert page.is_visible("aside")
    page.wait_for_function(f"() => /^{n} match/.test(document.querySelector('#status')"
                           ".textContent)")
    assert page.input_value("#q-dsl") == f"Tags.all='{tag}'"


def test_the_viewer_shows_the_description_and_keywords(page, built):
    page.click("nav.tabs button[data-tab=files]")
    page.click("#clear-search")
    page.wait_for_function("() => /^15 matches/.test(document.querySelector('#status')"
                           ".textContent)")
    page.locator(".card img").first.click()
    page.wait_for_selector("#viewer[open]")
    assert page.is_visible("#viewer-about")
    name = page.text_content("#viewer-name")
    [meta] = [m for m in built.store.iter_file_metas(built.dataset_id, "v1")
              if m.file_name == name]
    text, keywords = meta.description.split("\nKeywords: ")
    assert page.text_content("#viewer-description") == text
    assert page.locator("#viewer-keywords .chip").all_inner_texts() == keywords.split(", ")
    _shot(page, "viewer")
    page.click("#viewer-close")


@pytest.mark.parametrize("width", [1280, 1440, 1920])
def test_the_sidebar_fits_with_nothing_clipped(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.click("nav.tabs button[data-tab=files]")
    page.fill("#q-dsl", "FileName:'a' AND DataSize >= )")
    page.click("#search")
    page.wait_for_function("() => document.querySelector('#dsl-error').textContent.length > 0")
    overflow = page.evaluate("""() => {
        const aside = document.querySelector('aside').getBoundingClientRect();
        const out = [...document.querySelectorAll('aside input, aside select, aside textarea, aside button')]
          .filter(e => { const r = e.getBoundingClientRect(); return r.width && (r.right > aside.right + 0.5 || r.left < aside.left - 0.5); })
          .map(e => e.id || e.tagName);
        const err = document.querySelector('#dsl-error');
        return {out, clipped: err.scrollWidth > err.clientWidth + 1};
    }""")
    assert overflow == {"out": [], "clipped": False}, overflow
    lines = page.text_content("#dsl-error").split("\n")
    assert lines[2].endswith("^")
    if width == 1280:
        _shot(page, "sidebar-1280")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.click("#clear-search")
