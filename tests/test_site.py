"""The static leaderboard site (harness.site): page content and escaping, warnings, missing-file fallbacks, and a
headless-Chromium test that sorts, filters and drills down as a person would."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.site import compute_warnings, safe_name, write_site
from harness.site.build import fmt_ci

REPO = Path(__file__).resolve().parents[1]
TLDR = REPO / "leaderboards" / "tldr" / "runs" / "tldr-embedded"
CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# ---------------------------------------------------------------------------------------------- helpers

def _row(system="sami-iter1", **extra) -> dict:
    row = {"task": "demo", "principle_split": "train", "baseline": "base", "system": system, "trainer": "sami",
           "iteration": 1, "model": "tiny", "learning_rate": 5e-05, "win_rate": 0.62, "ci_low": 0.55,
           "ci_high": 0.69, "ci_method": "bca", "n": 200, "lc_win_rate": 0.6, "soft_win_rate": 0.58,
           "soft_ci_low": 0.53, "soft_ci_high": 0.63, "first_position_preference": 0.55, "tie_rate": 0.0,
           "parse_failure_rate": 0.0, "position_consistency": 0.8, "mean_length": 40.0,
           "baseline_mean_length": 44.0, "mi_nats": 0.2, "mi_nats_base_scorer": 0.1, "judge": "fake",
           "judge_hash": "j" * 16, "protocol": "robust", "run_id": "demo-run", "config_hash": "c" * 16,
           "commit": "a" * 40, "responses_sha": "r" * 16, "verdicts_sha": "v" * 16, "checkpoint_hash": None,
           "verdicts_path": f"judgments/{system}--vs--base/verdicts.jsonl"}
    row.update(extra)
    return row


def _jsonl(path: Path, lines: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def make_run(root: Path, row: dict | None = None, *, candidate_text="A short candidate.",
             baseline_text="A baseline answer.", query="What is up?", verdict_extra: dict | None = None) -> Path:
    """A minimal run folder with one row, two items, both responses, verdicts in both orders, provenance."""
    row = row or _row()
    run = root / row["run_id"]
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"run_id": row["run_id"], "config_hash": row["config_hash"],
                                                  "commit": row["commit"], "notes": ["Note with `code`."],
                                                  "rows": [row]}), encoding="utf-8")
    (run / "config.yaml").write_text("task: demo\n", encoding="utf-8")
    (run / "manifest.json").write_text("{}\n", encoding="utf-8")
    split = row["principle_split"]
    for system, text in ((row["system"], candidate_text), (row["baseline"], baseline_text)):
        _jsonl(run / "eval" / system / split / "responses.jsonl",
               [{"item": f"demo:{i}", "query": f"{query} #{i}", "subset": None, "constitution": "1. Be kind.",
                 "principles": ["pos kind"], "response": f"{text} #{i}"} for i in range(2)])
    verdicts = []
    for i in range(2):
        for order, winner, p in (("candidate_first", "candidate", 0.8), ("baseline_first", "baseline", 0.3)):
            verdicts.append({"item": f"demo:{i}", "order": order, "winner": winner, "p_candidate": p,
                             "candidate": row["system"], "baseline": row["baseline"], "judge": "fake",
                             "attempts": 1, "raw": "<b>raw</b> output", **(verdict_extra or {})})
    verdicts_path = run / row["verdicts_path"]
    _jsonl(verdicts_path, verdicts)
    (verdicts_path.parent / "done.json").write_text('{"stage": "judge"}\n', encoding="utf-8")
    return run


def item_pages(site: Path) -> list[Path]:
    return sorted((site / "items").rglob("*.html"))


def local_links(html: str) -> list[str]:
    return [link for link in re.findall(r'(?:href|src)="([^"]+)"', html)
            if not link.startswith(("#", "data:"))]


# ---------------------------------------------------------------------------------------------- unit tests

def test_fmt_ci_reads_like_the_table():
    assert fmt_ci(0.5, 0.412, 0.588) == {"value": "50.0", "ci": "[41.2, 58.8]"}
    assert fmt_ci(0.0724, 0.01, 0.13, percent=False) == {"value": "0.072", "ci": "[0.010, 0.130]"}
    assert fmt_ci(None, None, None) == {"value": "–", "ci": ""}


@pytest.mark.parametrize("changes, codes", [
    ({}, []),
    ({"first_position_preference": 0.9}, ["position-bias"]),
    ({"first_position_preference": 0.89}, []),
    ({"ci_low": 0.45, "ci_high": 0.55}, ["unresolved-ci"]),
    ({"ci_low": 0.5, "ci_high": 0.5}, ["unresolved-ci"]),
    ({"soft_ci_low": 0.49, "soft_ci_high": 0.6}, ["unresolved-ci"]),
    ({"n": 49}, ["small-n"]),
    ({"n": 50}, []),
    ({"parse_failure_rate": 0.06}, ["parse-failures"]),
    ({"parse_failure_rate": 0.05}, []),
    ({"warnings": ["judge ran out of retries"]}, ["run"]),
    ({"first_position_preference": 1.0, "ci_low": 0.5, "ci_high": 0.5, "n": 16, "parse_failure_rate": 0.2,
      "warnings": "stored"}, ["position-bias", "unresolved-ci", "small-n", "parse-failures", "run"]),
    ({"first_position_preference": None, "ci_low": None, "n": None, "parse_failure_rate": None}, []),
])
def test_warnings(changes, codes):
    assert [w.code for w in compute_warnings(_row(**changes))] == codes


def test_unresolved_ci_names_both_intervals():
    (warning,) = compute_warnings(_row(ci_low=0.4, ci_high=0.6, soft_ci_low=0.45, soft_ci_high=0.52))
    assert "win rate and the soft win rate" in warning.detail


def test_safe_name_keeps_files_inside_their_folder():
    for raw in ("../../etc/passwd", "a/b\\c", ".hidden", "x y<z>", "", "é"):
        name = safe_name(raw)
        assert name and not name.startswith(".") and re.fullmatch(r"[A-Za-z0-9._-]+", name)


def test_text_is_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    run = make_run(tmp_path / "runs", _row(system="sami<i>1", verdicts_path="judgments/evil/verdicts.jsonl"),
                   candidate_text=evil, query=f"Q {evil}")
    index = write_site(tmp_path / "site", [run])
    (page,) = item_pages(tmp_path / "site")
    assert page.name == "sami_i_1--vs--base--train.html"
    html = page.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script>alert" not in html and html.count("<script") == 1      # only the site's own script file
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "<b>raw</b>" not in html
    index_html = index.read_text(encoding="utf-8")
    assert "sami&lt;i&gt;1" in index_html and "sami<i>1" not in index_html


def test_missing_files_fall_back_with_a_note(tmp_path):
    run = make_run(tmp_path / "runs")
    (run / "eval" / "base" / "train" / "responses.jsonl").unlink()
    (run / "judgments" / "sami-iter1--vs--base" / "verdicts.jsonl").unlink()
    (run / "config.yaml").unlink()
    write_site(tmp_path / "site", [run])
    (page,) = item_pages(tmp_path / "site")
    html = page.read_text(encoding="utf-8")
    assert "Baseline responses not found (eval/base/train/responses.jsonl)" in html
    assert "Judge verdicts not found (judgments/sami-iter1--vs--base/verdicts.jsonl)" in html
    assert "config.yaml not found" in html and "config.yaml (missing)" in html
    assert html.count("Baseline response not available.") == 2
    assert html.count("No judge verdicts for this item.") == 2
    assert "A short candidate. #0" in html and "What is up? #1" in html  # what is there is still shown


def test_no_item_files_at_all_still_builds(tmp_path):
    run = make_run(tmp_path / "runs")
    for path in sorted(run.rglob("*.jsonl")):
        path.unlink()
    write_site(tmp_path / "site", [run])
    (page,) = item_pages(tmp_path / "site")
    html = page.read_text(encoding="utf-8")
    assert "Candidate responses not found" in html and "No evaluation items were found" in html


def test_new_keys_show_in_headline_or_extra_columns(tmp_path):
    row = _row(adherence=0.8, adherence_ci_low=0.7, adherence_ci_high=0.9, mi_ci_low=0.01, mi_ci_high=0.13,
               mi_nats=0.0724, mi_base_ci_low=0.0, mi_base_ci_high=0.2, rank=1, tied=True,
               warnings=["judge ran out of retries"], new_metric=0.123456, new_flag=True)
    index = write_site(tmp_path / "site", [make_run(tmp_path / "runs", row)]).read_text(encoding="utf-8")
    headers = re.findall(r'<th scope="col" class="([^"]*)" data-col="([^"]+)"', index)
    columns = [col for _, col in headers]
    assert columns[:3] == ["rank", "system", "task"]
    assert "adherence" in columns and "mi_nats" in columns and "mi_nats_base_scorer" in columns
    extra = [col for cls, col in headers if cls == "extra"]
    assert {"new_metric", "new_flag", "trainer", "verdicts_sha"} <= set(extra)
    assert not {"adherence_ci_low", "mi_ci_low", "ci_low", "tied", "warnings"} & set(extra)
    text = re.sub(r"<[^>]+>", " ", index)
    text = re.sub(r"\s+", " ", text)
    assert "80.0 [70.0, 90.0]" in text and "62.0 [55.0, 69.0]" in text and "0.072 [0.010, 0.130]" in text
    assert "=1" in text and "0.123" in text and "judge ran out of retries" in text


def test_optional_headline_columns_are_left_out_when_absent(tmp_path):
    index = write_site(tmp_path / "site", [TLDR]).read_text(encoding="utf-8")
    columns = re.findall(r'data-col="([^"]+)"', index)
    assert "adherence" not in columns and "rank" not in columns
    assert columns[:4] == ["system", "task", "principle_split", "baseline"]


def test_per_principle_checks_are_shown(tmp_path):
    checks = {"checks": {"candidate": {"concise": True, "comprehensive": False},
                         "baseline": {"concise": False, "comprehensive": None}}}
    write_site(tmp_path / "site", [make_run(tmp_path / "runs", verdict_extra=checks)])
    (page,) = item_pages(tmp_path / "site")
    html = page.read_text(encoding="utf-8")
    assert "Principle check" in html and "comprehensive" in html
    assert html.count("✓ pass") == 4 and html.count("✗ fail") == 8


def test_committed_run_builds_a_self_contained_site(tmp_path):
    site = tmp_path / "site"
    index = write_site(site, [TLDR], title="TL;DR")
    results = json.loads((TLDR / "results.json").read_text(encoding="utf-8"))
    assert len(item_pages(site)) == len(results["rows"])
    task_html = (site / "tldr.html").read_text(encoding="utf-8")
    assert task_html.count('src="data:image/png;base64,') == 3
    assert "Sample size: 16 items" in task_html
    for page in [index, site / "tldr.html", *item_pages(site)]:
        html = page.read_text(encoding="utf-8")
        for link in local_links(html):
            assert not re.match(r"^[a-z]+:|^//", link), f"{page.name} links outside the site: {link}"
            target = (page.parent / unquote(link.split("#")[0])).resolve()
            assert target.is_file(), f"{page.name} links to a missing file: {link}"
    item = (site / "items" / "tldr-embedded" / "sami-iter1--vs--base--train.html").read_text(encoding="utf-8")
    for key in ("config_hash", "judge_hash", "commit", "responses_sha", "verdicts_sha", "checkpoint_hash"):
        assert results["rows"][0][key] in item
    for name in ("config.yaml", "manifest.json", "done.json"):
        assert f">{name}</a>" in item


def test_rebuild_replaces_old_pages(tmp_path):
    site = tmp_path / "site"
    write_site(site, [make_run(tmp_path / "a", _row(system="old-system"))])
    write_site(site, [make_run(tmp_path / "b", _row(system="new-system"))])
    assert [p.name for p in item_pages(site)] == ["new-system--vs--base--train.html"]


# ---------------------------------------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright==1.65.2; no `playwright install` needed)")
    if not CHROMIUM.is_file():
        pytest.skip(f"no chromium binary at {CHROMIUM} (run scripts/install-browser.sh, or set HARNESS_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.errors, tab.requests = [], []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.on("request", lambda request: tab.requests.append(request.url))
    yield tab
    context.close()


def visible_systems(page) -> list[str]:
    """System names of the visible rows, top to bottom on the screen."""
    cells = page.locator("#rows tbody tr:visible td.system")
    boxes = [(cells.nth(i).bounding_box()["y"], cells.nth(i).inner_text().strip()) for i in range(cells.count())]
    return [name for _, name in sorted(boxes)]


def squash(text: str) -> str:
    return " ".join(text.split())


def test_browser_sort_filter_and_drill_down(page, tmp_path):
    index = write_site(tmp_path / "site", [TLDR])
    rows = json.loads((TLDR / "results.json").read_text(encoding="utf-8"))["rows"]
    page.goto(index.as_uri())
    assert visible_systems(page) == [r["system"] for r in rows]
    assert page.locator("[data-count-for=rows]").inner_text() == "6 rows"

    # sort by soft win rate: ascending, then descending on a second click
    header = page.get_by_role("columnheader", name=re.compile(r"^Soft win rate"))
    header.click()
    by_soft = [r["system"] for r in sorted(rows, key=lambda r: r["soft_win_rate"])]
    assert by_soft != [r["system"] for r in rows]
    assert visible_systems(page) == by_soft
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert visible_systems(page) == by_soft[::-1]
    assert header.get_attribute("aria-sort") == "descending"

    # filters: trainer select, then free text
    page.get_by_label("Trainer").select_option("sami")
    assert visible_systems(page) == [s for s in by_soft[::-1] if s.startswith("sami")]
    assert page.locator("[data-count-for=rows]").inner_text() == "2 of 6 rows"
    page.get_by_label("Trainer").select_option("")
    page.get_by_label("Search").fill("dpo-iter2")
    assert visible_systems(page) == ["dpo-iter2"]
    page.get_by_label("Search").fill("no such system")
    assert visible_systems(page) == [] and page.get_by_text("No rows match the filters.").is_visible()
    page.get_by_label("Search").fill("")
    assert len(visible_systems(page)) == 6

    # extra columns appear only after the toggle
    extra_header = page.locator('th[data-col="verdicts_sha"]')
    assert not extra_header.is_visible()
    page.get_by_role("button", name="Show all columns").click()
    assert extra_header.is_visible()
    page.get_by_role("button", name="Hide extra columns").click()
    assert not extra_header.is_visible()

    # drill down: the first row's link opens its item page
    first = visible_systems(page)[0]
    page.locator("#rows tbody tr:visible td.system a").first.click()
    page.wait_for_url(re.compile(r"/items/tldr-embedded/.+\.html$"))
    assert page.locator("h1").inner_text() == f"{first} vs base"
    candidate = [json.loads(line) for line in (TLDR / "eval" / first / "train" / "responses.jsonl").open()]
    baseline = [json.loads(line) for line in (TLDR / "eval" / "base" / "train" / "responses.jsonl").open()]
    item = page.locator("article.item").first
    assert item.get_attribute("data-item") == candidate[0]["item"] == baseline[0]["item"]
    for selector, expected in ((".query pre", candidate[0]["query"]),
                               (".response.candidate pre", candidate[0]["response"]),
                               (".response.baseline pre", baseline[0]["response"])):
        shown = item.locator(selector)
        assert shown.is_visible(), selector
        assert squash(shown.inner_text()) == squash(expected), selector
    verdicts = item.locator("table.verdicts tbody tr")
    assert verdicts.count() == 2
    assert "candidate shown first" in verdicts.nth(0).inner_text()
    assert "baseline shown first" in verdicts.nth(1).inner_text()
    assert re.search(r"\d+\.\d%", verdicts.nth(0).inner_text())

    assert page.errors == []
    assert all(url.startswith(("file://", "data:")) for url in page.requests), page.requests


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_browser_over_http_server(page, tmp_path):
    site = tmp_path / "site"
    write_site(site, [TLDR])
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        page.goto(base + "index.html")
        page.get_by_role("columnheader", name=re.compile(r"^MI self")).click()
        rows = json.loads((TLDR / "results.json").read_text(encoding="utf-8"))["rows"]
        assert visible_systems(page) == [r["system"] for r in sorted(rows, key=lambda r: r["mi_nats"])]
        page.get_by_role("link", name="tldr", exact=True).first.click()
        page.wait_for_url(base + "tldr.html")
        assert page.locator("section.plots img").count() == 3
        page.locator("#rows tbody td.system a").first.click()
        page.wait_for_url(re.compile(r"/items/tldr-embedded/.+\.html$"))
        assert page.locator("article.item").count() == 16
        assert page.locator("article.item .response.baseline pre").first.is_visible()
        assert page.errors == []
        assert all(urlparse(url).netloc == urlparse(base).netloc or url.startswith("data:")
                   for url in page.requests), page.requests
    finally:
        server.shutdown()
        server.server_close()
