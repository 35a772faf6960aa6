"""The HTML report: its content (timelines, scaling chart, verdicts, signature, environment), its
escaping, and — in real headless Chromium driven by Playwright — that it renders with no network.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import markupsafe
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import truepar
from helpers.cli import truepar as truepar_cli
from truepar.evidence import bench_evidence, run_evidence, sign
from truepar.report import html

UTC = {"started_utc": "2024-01-01T00:00:00Z", "ended_utc": "2024-01-01T00:00:01Z"}
CHROMIUM = os.environ.get("TRUEPAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags for a root, headless, offline Chromium: without the background-networking ones it tries
#: (and fails) to reach Google's hosts at every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def bench_doc() -> dict[str, Any]:
    fake = truepar.FakeSpec(duration_s=1.0, cpu_s=0.9)
    ops = [truepar.SleepOp(id=f"op{i}", seconds=1, fake=fake) for i in range(6)]
    ops.append(
        truepar.SleepOp(id="<script>alert(1)</script>", seconds=1, fake=truepar.FakeSpec(fail=-1))
    )
    plan = truepar.Plan(
        name="fakes & <friends>", ops=ops, defaults=truepar.Defaults(backend="fake")
    )
    report = truepar.measure.bench(
        plan, backends=("fake",), workers=(1, 2, 3, 6), repeat=3, warmup=0, cores=8
    )
    return bench_evidence(report, plan, cores=8, **UTC)


@pytest.fixture(scope="module")
def run_doc() -> dict[str, Any]:
    ops = [truepar.SleepOp(id=f"nap{i}", seconds=0.02) for i in range(4)]
    plan = truepar.Plan(name="naps", ops=ops, defaults=truepar.Defaults(workers=2))
    return run_evidence(truepar.run(plan, backend="threads"), plan, **UTC)


def test_bench_page_has_a_timeline_per_configuration(bench_doc: dict[str, Any]) -> None:
    page = html([bench_doc])
    configs = ["fake ×1", "fake ×2", "fake ×3", "fake ×6"]
    for label in configs:
        assert f'data-config="{label}"' in page
    assert page.count('class="gantt"') == len(configs)
    # each timeline: its representative run, every op attempt one bar
    assert page.count('class="bar status-ok"') == 6 * len(configs)
    assert page.count('class="bar status-failed"') == len(configs)
    assert page.count('class="scaling"') == 1
    assert 'class="usl"' in page  # four worker counts: a USL fit is drawn
    assert "parallel" in page and "verdict-parallel" in page
    for reason in bench_doc["data"]["results"][0]["reasons"]:
        assert str(markupsafe.escape(reason)) in page
    assert "unsigned" in page
    assert "cores available" in page


def test_nothing_in_the_evidence_can_inject_markup(bench_doc: dict[str, Any]) -> None:
    page = html([bench_doc])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "fakes &amp; &lt;friends&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # no external resources
    assert "https://" not in page


def test_signature_status_is_shown(bench_doc: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign(bench_doc, key)
    kid = signed["signature"]["key_id"]
    assert f"valid, key {kid}" in html([signed])
    trust = {kid: ("alice", key.public_key())}
    assert "valid and trusted: alice" in html([signed], trust=trust)  # type: ignore[arg-type]
    assert "UNTRUSTED" in html([signed], trust={})
    signed["data"]["results"][0]["speedup"] = 99.0
    assert "INVALID" in html([signed])


def test_several_documents_go_in_one_page(
    bench_doc: dict[str, Any], run_doc: dict[str, Any]
) -> None:
    page = html([bench_doc, run_doc])
    assert page.count('<section class="evidence"') == 2
    assert 'data-kind="run"' in page and 'data-kind="bench"' in page
    assert 'data-config="threads ×2"' in page


def test_cli_writes_html_atomically_and_refuses_bad_evidence(
    bench_doc: dict[str, Any], tmp_path: Path
) -> None:
    evidence = tmp_path / "bench.json"
    evidence.write_text(json.dumps(bench_doc))
    out = tmp_path / "r" / "report.html"
    result = truepar_cli("report", str(evidence), "--html", str(out))
    assert result.returncode == 0, result.stderr
    assert f"HTML report written to {out}" in result.stdout
    assert out.read_text().startswith("<!doctype html>")
    broken = dict(bench_doc, data={"trials": "nope"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    out2 = tmp_path / "r2.html"
    result = truepar_cli("report", str(bad), "--html", str(out2))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "malformed evidence" in result.stderr
    assert not out2.exists()


# -- real headless Chromium ------------------------------------------------------------------


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs it)")


def test_report_renders_in_headless_chromium(
    bench_doc: dict[str, Any], run_doc: dict[str, Any], tmp_path: Path
) -> None:
    executable = _chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "report.html"
    page_file.write_text(html([bench_doc, run_doc]))
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            gantts = page.locator("svg.gantt")
            assert gantts.count() == 5  # four bench configurations and the run
            bars = page.locator("svg.gantt rect.bar")
            assert bars.count() == 7 * 4 + 4
            box = bars.first.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            chart = page.locator("svg.scaling")
            assert chart.count() == 1 and chart.is_visible()
            assert page.locator("svg.scaling polyline.usl").count() == 1
            points = 1 + len(bench_doc["data"]["results"])  # the baseline, then each result
            assert page.locator("svg.scaling circle.point").count() == points
            verdicts = page.locator("table.verdict-table .verdict").all_inner_texts()
            assert "parallel" in verdicts
            assert page.get_by_text("Signature:").count() == 2
            assert page.locator("text=<script>alert(1)</script>").count() >= 1  # shown, as text
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert all(url.startswith("file://") for url in requests), requests
