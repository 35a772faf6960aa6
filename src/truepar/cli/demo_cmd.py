"""``truepar demo``: the three seed scenarios, benched for real, each with its verification tree.

(a) independent file operations — eight generated 16 MiB files, read and hashed;
(b) mixed tool operations — ls, grep, read, bash and Python calls over a copy of this machine's
    Python standard library sources;
(c) agent deployments — three sub-agents started at once as real subprocesses, each doing real
    work over the machine's Python standard library in its own scratch folder;
and, where Ray is installed, pure-Python CPU work on Ray's warm actors (a local instance, started
for it; how long that took is said, and counted in no run).

A scenario that ``requires`` a module missing here is skipped, with a line saying what to install.
Scenarios on a backend that leaves threads in this process (Ray's client) run after the others:
afterwards the ``processes`` backend would start its workers from a fork server, slower.

Each scenario: the sequential baseline and its parallel configurations (interleaved trials), the
best configuration's verification tree, its bench JSON and its evidence (signed when a key
exists, ``truepar keys init``; recorded in ``--ledger``, else the default ledger) under
``--out``. Then one summary, and one HTML report and one Chrome trace of all three
(``OUT/report.html``, ``OUT/trace.json``).
Exit 0 when every scenario is VALIDATED, 1 when one is not, 2 for bad input.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.backends import backend_class
from truepar.cli.evidence_opts import EvidenceOutput
from truepar.cli.layout import fits, record
from truepar.cli.report_outputs import MdOpt, ReportOutputs
from truepar.cli.tree import VERDICT_STYLE, verification_tree
from truepar.engine.environment import cores_available
from truepar.errors import UsageError
from truepar.evidence import bench_evidence, bench_summary
from truepar.evidence.metadata import utc_now
from truepar.fileio import atomic_write_json, check_writable
from truepar.measure.bench import BenchReport, bench
from truepar.measure.criteria import Criteria, Validation, validate
from truepar.plan.load import load_plan
from truepar.units import fmt_s

#: The file in the scenarios folder that lists the scenarios.
DEMO_FILE = "demo.toml"


class Scenario(BaseModel):
    """One seed scenario, as ``scenarios/demo.toml`` describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    title: str
    plan: str
    backends: tuple[str, ...]
    workers: tuple[int, ...]
    min_speedup: float | None = None
    #: Modules that must be importable here (``ray``): else the scenario is skipped, said why.
    requires: tuple[str, ...] = ()

    @property
    def criteria(self) -> Criteria:
        return Criteria(min_speedup=self.min_speedup)


class Demo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prepare: str | None = None
    scenario: tuple[Scenario, ...]


def load_demo(folder: Path) -> Demo:
    """The scenarios of ``folder/demo.toml``; a missing or bad file is one line, exit 2."""
    path = folder / DEMO_FILE
    try:
        return Demo.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise UsageError(f"--scenarios: {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UsageError(f"--scenarios: {path}: {str(exc).splitlines()[0]}") from None


def demo_command(
    scenarios: Annotated[
        Path, typer.Option("--scenarios", help="Folder with the scenario plans.")
    ] = Path("scenarios"),
    out: Annotated[
        Path, typer.Option("--out", help="Where each scenario's bench JSON is written.")
    ] = Path(".truepar/demo"),
    repeat: Annotated[int, typer.Option("--repeat", help="Measured trials per scenario.")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", help="Unmeasured trials first.")] = 1,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="Sign the evidence with the key in this folder.")
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger", help="Record each scenario's evidence here (default: truepar's ledger)."
        ),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", help="HTML report of all three [default: OUT/report.html]."),
    ] = None,
    md: MdOpt = None,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="Chrome trace of all three [default: OUT/trace.json]."),
    ] = None,
) -> int:
    """Bench the three seed scenarios and print a verification tree for each."""
    if not scenarios.is_dir() or not (scenarios / "helpers.py").exists():
        raise UsageError(
            f"--scenarios {str(scenarios)!r} has no scenario plans: run from the repository "
            "root or pass --scenarios PATH"
        )
    check_writable(out / "files.json", "--out")
    outputs = ReportOutputs(
        html=html_out if html_out is not None else out / "report.html",
        md=md,
        trace=trace if trace is not None else out / "trace.json",
    )
    outputs.check()
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {repeat}")
    if warmup < 0:
        raise UsageError(f"--warmup must be 0 or more, not {warmup}")
    console = Console(highlight=False)
    demo = load_demo(scenarios)
    _prepare(scenarios, demo, console)
    rows: list[tuple[Scenario, BenchReport, Validation]] = []
    chosen = _runnable(demo.scenario, console)
    plans = {s.key: load_plan(scenarios / s.plan) for s in chosen}
    writers = {
        s.key: EvidenceOutput(
            out / f"{s.key}.evidence.json",
            kind="bench",
            name=plans[s.key].name,
            keys=keys,
            ledger=ledger,
            console=console,
        )
        for s in chosen
    }
    for scenario in chosen:
        plan = plans[scenario.key]
        console.print(f"\n[bold]{scenario.title}[/] — {len(plan.ops)} ops, benching…")
        if "ray" in scenario.backends:
            _start_ray(console)
        target = out / f"{scenario.key}.json"
        started = utc_now()

        def save(report: BenchReport, target: Path = target) -> None:
            atomic_write_json(target, report.to_json())

        report = bench(
            plan,
            backends=scenario.backends,
            workers=scenario.workers,
            repeat=repeat,
            warmup=warmup,
            on_config=save,
            cores=cores_available(),
        )
        validation = validate(report, scenario.criteria)
        atomic_write_json(target, _with_validation(report, validation))
        writer = writers[scenario.key]
        writer.write(
            bench_evidence(
                report, plan, started_utc=started, ended_utc=utc_now(), cores=cores_available()
            )
        )
        console.print(verification_tree(scenario.title, plan, report, validation))
        writer.finish(_ledger_summary(report, validation))
        rows.append((scenario, report, validation))
        if not report.complete:
            break
    _summary(console, rows)
    console.print(f"bench JSON written to {out}/")
    docs = [w.last for w in writers.values() if w.last is not None]
    if docs:
        outputs.write(docs, console, label="demo evidence")
    if any(not r.complete for _, r, _ in rows):
        return 130
    return 0 if all(v.validated for *_, v in rows) else 1


def _runnable(scenarios: tuple[Scenario, ...], console: Console) -> list[Scenario]:
    """The scenarios that can run here, those on a backend that leaves threads behind last."""
    kept = []
    for s in scenarios:
        missing = [m for m in s.requires if importlib.util.find_spec(m) is None]
        if missing:
            console.print(
                f"skipped: {s.title} — needs {', '.join(missing)} "
                f"(pip install 'truepar[{missing[0]}]')"
            )
        else:
            kept.append(s)
    return sorted(kept, key=lambda s: any(backend_class(b).leaves_threads for b in s.backends))


def _start_ray(console: Console) -> None:
    """Start (or join) Ray before its scenario, and say what that cost: seconds no run counts."""
    from truepar.backends.ray import connect  # noqa: PLC0415 - imports Ray: only when needed

    t0 = time.perf_counter()
    session = connect()
    where = "joined the Ray cluster" if session.address else "started a local Ray instance"
    console.print(
        f"{where} in {fmt_s(time.perf_counter() - t0)} (its warm actors start in the first "
        "run's set-up: neither is counted in any run's time)"
    )


def _ledger_summary(report: BenchReport, validation: Validation) -> dict[str, Any]:
    """A bench's summary, and whether the demo's criteria validated it."""
    return {**bench_summary(report), "state": validation.state}


def _prepare(scenarios: Path, demo: Demo, console: Console) -> None:
    """Run the scenarios' ``prepare`` script once (it makes their data, or finds it made)."""
    if demo.prepare is None:
        return
    script = scenarios / demo.prepare
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"--scenarios: {script} failed (exit {proc.returncode}): {last}")
    console.print(proc.stdout.strip(), markup=False)


def _with_validation(report: BenchReport, validation: Validation) -> dict[str, Any]:
    data = report.to_json()
    data["validation"] = {
        "state": validation.state,
        "validated": validation.validated,
        "failures": list(validation.failures),
        "required": validation.criteria.describe(),
    }
    return data


def _summary(console: Console, rows: list[tuple[Scenario, BenchReport, Validation]]) -> None:
    """One row per scenario; at a width too narrow for the table whole (a CI log), one short
    record per scenario instead, so no title wraps a word per line and no state is cut."""
    table = Table(title="Summary", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("scenario", "sequential", "best", "speedup", "verdict", "state"):
        table.add_column(col, no_wrap=True)
    #: Per scenario: its title, its numbers (none where nothing was best), its state.
    entries: list[tuple[str, list[Text], Text]] = []
    for scenario, report, validation in rows:
        best, base = validation.best, report.baseline
        state = Text(validation.state, style="green" if validation.validated else "red")
        facts: list[Text] = []
        if best is not None and base is not None:
            said = best.verdict or ""
            facts = [
                Text(fmt_s(base.wall_s)),
                Text(f"{best.backend} ×{best.workers}"),
                Text(f"{best.speedup:.2f}×"),
                Text(said, style=VERDICT_STYLE.get(said, "")),
            ]
        entries.append((scenario.title, facts, state))
        table.add_row(scenario.title, *(facts or [Text("")] * 4), state)
    if fits(console, table):
        console.print(table)
        return
    console.print("Summary", style="bold", markup=False)
    for title, facts, state in entries:
        if facts:
            sequential, best_at, speedup, verdict = facts
            line = Text.assemble(
                ("sequential ", "dim"), sequential, ("  best ", "dim"), best_at, "  ", speedup,
                "  ", verdict, "  ", state,
            )  # fmt: skip
        else:
            line = state
        record(console, Text(title, style="bold"), [line])
