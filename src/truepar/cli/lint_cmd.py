"""``truepar lint PLAN``: the plan's parallel-safety findings, each with its rule id and a fix.

PLAN may be a swarm's ``AGENTS.toml`` too: its agents are linted as the plan the swarm runs.

Exit 0 when there is no error (warnings are printed), 1 when there is one, 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.agents.swarm_config import load_swarm
from truepar.agents.swarm_plan import draft_plan, is_swarm_file, lint_swarm
from truepar.cli.layout import FREE_TEXT_MIN, fits, record
from truepar.plan.load import load_plan
from truepar.preflight.lint import Finding, lint

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


def lint_command(
    plan: Annotated[
        Path,
        typer.Argument(
            help="Plan file (TOML, or YAML), or a swarm's AGENTS.toml.", show_default=False
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON (stdout).")
    ] = False,
) -> int:
    """Check PLAN for what makes parallel runs unsafe or slower than they look."""
    if is_swarm_file(plan):
        swarm = load_swarm(plan)
        loaded, findings = draft_plan(swarm), lint_swarm(swarm)
    else:
        loaded = load_plan(plan)
        findings = lint(loaded)
    errors = sum(f.severity == "error" for f in findings)
    if json_out:
        doc = {
            "plan": str(plan),
            "errors": errors,
            "warnings": len(findings) - errors,
            "findings": [f.to_json() for f in findings],
        }
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return 1 if errors else 0
    out = Console(highlight=False)
    if not findings:
        out.print(f"{plan}: {len(loaded.ops)} ops, no findings", markup=False)
        return 0
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_lines=False)
    for col in ("rule", "severity", "ops", "finding and fix"):
        table.add_column(col, overflow="fold", no_wrap=col in ("rule", "severity"))
    for f in findings:
        table.add_row(f"{f.rule} {f.name}", _severity(f.severity), ", ".join(f.ops), _text(f))
    if fits(out, table, free={"finding and fix": FREE_TEXT_MIN + 14}):
        out.print(table)
    else:
        # Too narrow for the table (a CI log): the rule and its ops, then the finding and the
        # fix as sentences, each on lines of its own.
        for f in findings:
            head = Text.assemble((f"{f.rule} {f.name}", "bold"), " · ", _severity(f.severity))
            head.append(f" · {', '.join(f.ops)}")
            record(out, head, [Text(f.message), Text(f"fix: {f.fix}", style="dim")])
    out.print(f"{plan}: {errors} error(s), {len(findings) - errors} warning(s)", markup=False)
    return 1 if errors else 0


def _severity(severity: str) -> Text:
    return Text(severity, style=SEVERITY_STYLE[severity])


def _text(finding: Finding) -> Text:
    text = Text(finding.message)
    text.append(f"\nfix: {finding.fix}", style="dim")
    return text
