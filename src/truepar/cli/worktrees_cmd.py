"""``truepar worktrees list`` and ``truepar worktrees clean``: see and tidy agents' worktrees.

``clean`` removes only truepar's own worktrees (under ``<repo>-worktrees/``) that are safe to
lose, and says for every other one why it stays; ``--dry-run`` shows the same decisions and
changes nothing. A path that is not a git repository is bad input: one line, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.agents.inventory import CleanItem, WorktreeInfo, clean, list_worktrees
from truepar.cli.layout import FREE_TEXT_MIN, fits, record

worktrees_app = typer.Typer(
    help="List and clean the git worktrees agents work in.", no_args_is_help=True
)

RepoArg = Annotated[
    Path,
    typer.Argument(help="The repository (any folder inside it).", show_default="current folder"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only a JSON object to stdout.")]


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _branch(w: WorktreeInfo) -> Text:
    return Text(w.branch or "(detached)", style="bold red" if w.detached else "")


def _state(w: WorktreeInfo) -> str:
    parts = []
    if w.main:
        parts.append("main")
    elif w.managed:
        parts.append("truepar")
    if w.detached:
        parts.append("DETACHED")
    if w.locked:
        alive = " (running)" if w.lock_alive else " (stale)" if w.lock_pid is not None else ""
        parts.append(f"locked{alive}")
    if w.prunable:
        parts.append("prunable")
    return ", ".join(parts) or "-"


@worktrees_app.command("list")
def list_command(repo: RepoArg = Path("."), json_out: JsonOpt = False) -> int:
    """Every worktree of REPO: branch, HEAD, lock, uncommitted changes, merged or not."""
    entries = list_worktrees(repo)
    if json_out:
        typer.echo(json.dumps({"worktrees": [w.to_dict() for w in entries]}, indent=2))
        return 0
    out = Console(highlight=False)
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{entries[0].path} — {len(entries)} worktree(s)",
        title_justify="left",
    )
    for col in ("path", "branch", "head", "state", "dirty", "merged"):
        table.add_column(col, no_wrap=col != "state")
    for w in entries:
        table.add_row(
            Text(str(w.path)),
            _branch(w),
            (w.head or "")[:10],
            Text(_state(w)),
            _yes_no(w.dirty),
            "-" if w.main else _yes_no(w.merged),
        )
    if fits(out, table):
        out.print(table)
    else:
        # Too narrow for the table (a CI log): each path whole, its facts on the next line.
        out.print(table.title, markup=False, soft_wrap=True)
        for w in entries:
            facts = Text.assemble("branch ", _branch(w), f" · head {(w.head or '')[:10]}")
            facts.append(f" · state {_state(w)} · dirty {_yes_no(w.dirty)}")
            facts.append(f" · merged {'-' if w.main else _yes_no(w.merged)}")
            record(out, Text(str(w.path), style="bold"), [facts])
    for w in entries:
        if w.locked and w.lock_reason:
            out.print(f"{w.path}: locked: {w.lock_reason}", markup=False)
    detached = [w for w in entries if w.detached]
    if detached:
        out.print(
            f"{len(detached)} worktree(s) on a detached HEAD: commits made there belong to no "
            "branch; check out a branch in them (git switch -c NAME)",
            markup=False,
        )
    return 0


@worktrees_app.command("clean")
def clean_command(
    repo: RepoArg = Path("."),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also remove worktrees with uncommitted changes, unmerged commits, a live lock "
            "or ignored files that are not build output.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Remove truepar's finished worktrees and their branches; prune orphaned ones."""
    report = clean(repo, dry_run=dry_run, force=force)
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return 0
    out = Console(highlight=False)
    items: list[CleanItem] = [*report.removed, *report.pruned, *report.kept]
    if not items:
        out.print(f"{report.repo}: no truepar worktrees to clean", markup=False)
        return 0
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{report.repo}{' (dry run: nothing changed)' if dry_run else ''}",
        title_justify="left",
    )
    for col in ("action", "path", "branch", "why"):
        table.add_column(col, no_wrap=col != "why")
    rows = []
    for item in items:
        style = "yellow" if item.action == "kept" else "green"
        branch = item.branch or "-"
        if item.branch_deleted:
            branch += " (deleted)" if not dry_run else " (would delete)"
        rows.append((Text(item.action, style=style), item.path, branch, "; ".join(item.reasons)))
    for action, path, branch, why in rows:
        table.add_row(action, Text(path), Text(branch), Text(why))
    if fits(out, table, free={"why": FREE_TEXT_MIN}):
        out.print(table)
    else:
        # Too narrow for the table (a CI log): each path whole, then its branch and the why.
        out.print(table.title, markup=False, soft_wrap=True)
        for action, path, branch, why in rows:
            lines = [Text(f"branch {branch}")] + ([Text(why)] if why else [])
            record(out, Text.assemble(action, " ", (path, "bold")), lines)
    for item in items:
        if item.ignored and item.action != "kept":
            deleted = "would delete" if dry_run else "deleted"
            out.print(
                f"{item.path}: {deleted} its ignored files: {', '.join(item.ignored)}",
                markup=False,
                soft_wrap=True,
            )
    would = "would " if dry_run else ""
    out.print(
        f"{would}remove{'' if dry_run else 'd'} {len(report.removed)}, "
        f"{would}prune{'' if dry_run else 'd'} {len(report.pruned)}, kept {len(report.kept)}"
        + ("" if force or not report.kept else " (--force removes the kept ones too)"),
        markup=False,
    )
    return 0
