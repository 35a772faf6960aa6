"""Markdown reports show names and ids as typed: nothing in a plan's name, an op's id or a
sentence quoting them becomes HTML, a link, code or an extra table cell where GitHub renders
the report (a pull-request comment, a job summary). Checked by rendering with a CommonMark
parser with tables, as GitHub's is."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

import truepar
from truepar.evidence import bench_evidence, run_evidence
from truepar.report import markdown
from truepar.report.markdown import escape_text

UTC = {"started_utc": "2024-01-01T00:00:00Z", "ended_utc": "2024-01-01T00:00:01Z"}
EVIL_NAME = "<img src=x onerror=alert(1)> | `x` *bold* [link](http://example.com)"
EVIL_IDS = ("a|b", "<script>alert(1)</script>", "`tick`", "x_y_z")


def render(text: str) -> str:
    return str(MarkdownIt("commonmark").enable("table").render(text))


class Cells(HTMLParser):
    """Every table row's cells, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = Cells()
    parser.feed(html)
    return parser.rows


def no_markup(html: str) -> None:
    for tag in ("<img", "<script", "<a ", "<code>", "<em>"):
        assert tag not in html, (tag, html)


@pytest.fixture(scope="module")
def plan() -> truepar.Plan:
    fake = truepar.FakeSpec(duration_s=1.0, cpu_s=0.9)
    ops = [truepar.SleepOp(id=op_id, seconds=1, fake=fake) for op_id in EVIL_IDS]
    return truepar.Plan(name=EVIL_NAME, ops=ops, defaults=truepar.Defaults(backend="fake"))


def test_bench_markdown_escapes_the_plan_name(plan: truepar.Plan) -> None:
    report = truepar.measure.bench(
        plan, backends=("fake",), workers=(1, 2, 4), repeat=3, warmup=0, cores=8
    )
    text = markdown(bench_evidence(report, plan, cores=8, **UTC))
    assert "<img" not in text and "<script" not in text
    html = render(text)
    no_markup(html)
    heading = next(line for line in html.splitlines() if line.startswith("<h2>"))
    assert heading == (
        "<h2>truepar bench — &lt;img src=x onerror=alert(1)&gt; | `x` *bold* "
        "[link](http://example.com)</h2>"
    )
    rows = table_rows(html)
    assert rows and all(len(row) == 7 for row in rows), rows


def test_run_markdown_keeps_each_op_id_in_its_own_cell(plan: truepar.Plan) -> None:
    doc = run_evidence(truepar.run(plan, backend="fake"), plan, **UTC)
    text = markdown(doc)
    assert "<script" not in text and "<img" not in text
    html = render(text)
    no_markup(html)
    ops = [row for row in table_rows(html) if len(row) == 5 and row[0] != "Op"]
    assert sorted(row[0] for row in ops) == sorted(EVIL_IDS)  # whole, as typed, one cell each
    assert all(len(row) in (5, 9) for row in table_rows(html))


def test_prove_markdown_escapes_names_and_the_sentences_that_quote_them() -> None:
    result = {
        "name": "kernel/<b>evil</b>|x",
        "backend": "evil",
        "workers": 2,
        "speedup": 1.5,
        "speedup_ci": [1.4, 1.6],
        "cores_used": 1.9,
        "work_ratio": 1.0,
        "verdict": "parallel",
        "expected": "parallel",
        "as_expected": True,
        "checksums_ok": True,
    }
    doc = {
        "kind": "prove",
        "data": {
            "results": [result],
            "conclusion": ["kernel/<b>evil</b>: see [here](http://example.com) and `this`"],
        },
        "environment": {"python_version": "3.13.0", "cpu_model": "<i>cpu</i> | model"},
    }
    text = markdown(doc)
    html = render(text)
    assert "<b>" not in html and "<i>" not in html and "<a " not in html and "<code>" not in html
    rows = table_rows(html)
    assert all(len(row) == 8 for row in rows), rows
    assert rows[1][0] == "kernel/<b>evil</b>|x"
    assert "kernel/&lt;b&gt;evil&lt;/b&gt;: see [here](http://example.com) and `this`" in html
    assert "&lt;i&gt;cpu&lt;/i&gt; | model" in html


def test_ordinary_text_is_unchanged() -> None:
    sentence = "speedup 1.53× [95% CI 1.41–1.62] > 1.1: a clear gain"
    assert escape_text(sentence) == sentence
