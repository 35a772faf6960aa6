"""The HTML report says only what its charts do: the time-scale note, scaling markers that
stay apart when they overlap, a "USL fit" key only beside a curve, and an environment a
person reads (GiB, load averages to two decimals). Asserted on the generated HTML and SVG."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

import truepar
from truepar.evidence import bench_evidence, run_evidence
from truepar.report import html
from truepar.report.svg import LABEL_W, scaling

UTC = {"started_utc": "2024-01-01T00:00:00Z", "ended_utc": "2024-01-01T00:00:01Z"}


@pytest.fixture(scope="module")
def bench_doc() -> dict[str, Any]:
    fake = truepar.FakeSpec(duration_s=1.0, cpu_s=0.9)
    ops = [truepar.SleepOp(id=f"op{i}", seconds=1, fake=fake) for i in range(6)]
    plan = truepar.Plan(name="fakes", ops=ops, defaults=truepar.Defaults(backend="fake"))
    report = truepar.measure.bench(
        plan, backends=("fake",), workers=(1, 2, 3, 6), repeat=3, warmup=0, cores=8
    )
    return bench_evidence(report, plan, cores=8, **UTC)


@pytest.fixture(scope="module")
def run_doc() -> dict[str, Any]:
    ops = [truepar.SleepOp(id=f"nap{i}", seconds=0.5, fake=truepar.FakeSpec()) for i in range(4)]
    plan = truepar.Plan(name="naps", ops=ops, defaults=truepar.Defaults(backend="fake"))
    return run_evidence(truepar.run(plan, backend="fake"), plan, **UTC)


def sections(page: str) -> list[str]:
    return re.findall(r'<section class="evidence".*?</section>', page, flags=re.S)


def wall_lines(section: str) -> list[tuple[float, float]]:
    """(x of the dashed wall line, wall seconds) of every timeline in a section."""
    found = re.findall(
        r'<line class="wall" x1="([\d.]+)".*?<title>wall ([\d.]+) (m?s)</title>', section
    )
    return [(float(x), float(v) / (1000 if unit == "ms" else 1)) for x, v, unit in found]


def test_the_time_scale_note_is_true_of_each_document(
    bench_doc: dict[str, Any], run_doc: dict[str, Any]
) -> None:
    page = html([run_doc, bench_doc])
    run, bench = sections(page)
    # One timeline: no claim of a shared scale, and nothing says "this report".
    assert "same time scale" not in page and "of this report" not in page
    assert "one time scale" not in run
    assert "one time scale" in bench
    # The bench's claim holds: every timeline draws the same number of pixels per second.
    lines = wall_lines(bench)
    assert len(lines) == 4
    per_second = [(x - LABEL_W) / wall for x, wall in lines]
    assert per_second == pytest.approx([per_second[0]] * 4, rel=1e-3), lines


def twin_series(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Two backends with identical numbers: every marker of one lands on the other's."""
    data = copy.deepcopy(doc["data"])
    results = data["results"] + [dict(r, backend="twin") for r in data["results"]]
    fits = dict(data.get("scaling") or {})
    return results, fits


def test_overlapping_markers_differ_in_shape_and_place(bench_doc: dict[str, Any]) -> None:
    results, fits = twin_series(bench_doc)
    svg = scaling(results, fits, "chart")
    markers = re.findall(r'<(circle|polygon) class="point marker-([a-z-]+)"([^>]*)>', svg)
    shapes = {shape for _, shape, _ in markers}
    assert len(shapes) == 2, markers  # one shape per backend
    assert all('stroke="#ffffff"' in attrs for *_, attrs in markers)  # outlined
    circles = re.findall(r'<circle class="point marker-circle"[^>]* cx="([\d.]+)"', svg)
    others = re.findall(r'<polygon class="point marker-square"[^>]* points="([\d.]+)', svg)
    assert circles and others
    # The twin's points sit beside the first backend's, not on them.
    assert not {float(x) for x in circles} & {round(float(x), 1) for x in others}


def test_usl_fit_is_in_the_legend_only_beside_a_curve(bench_doc: dict[str, Any]) -> None:
    results = bench_doc["data"]["results"]
    fitted = scaling(results, bench_doc["data"]["scaling"], "fitted")
    assert '<polyline class="usl"' in fitted and "USL fit</text>" in fitted
    bare = scaling(results, {}, "bare")
    assert '<polyline class="usl"' not in bare and "USL fit" not in bare
    assert "ideal</text>" in bare


def test_the_environment_reads_as_a_person_would_write_it(run_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(run_doc)
    doc["environment"].update(
        memory_total_bytes=int(23.4 * 2**30),
        memory_available_bytes=1536 * 2**20,
        load_average_at_start=[0.4213, 0.5099, 0.6],
        gil_enabled=True,
    )
    env = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", html([doc])))
    assert env["memory total"] == "23.4 GiB"
    assert env["memory available"] == "1.5 GiB"
    assert env["load average at start"] == "0.42, 0.51, 0.60"
    assert env["gil enabled"] == "yes"
