"""``truepar fit DATA.csv``: fit scaling laws to a worker sweep and say what limits it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from truepar.errors import UsageError
from truepar.measure.sweep_csv import load_measurements
from truepar.measure.usl import diagnose, fit_amdahl, fit_usl, karp_flatt


def _num(value: float | None) -> float | None:
    """JSON has no inf or NaN: both become null."""
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None, spec: str = ".4g") -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return format(value, spec)


def fit_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header: workers,throughput (or workers,seconds).", show_default=False
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print only a JSON object to stdout.")
    ] = False,
    gamma: Annotated[
        float | None,
        typer.Option("--gamma", help="Throughput of one worker, if known (otherwise fitted)."),
    ] = None,
) -> int:
    """Fit the Universal Scalability Law and Amdahl's law to DATA, with Karp–Flatt per point."""
    if gamma is not None and not (math.isfinite(gamma) and gamma > 0):
        raise UsageError(f"--gamma must be a positive number, not {gamma}")
    workers, throughput = load_measurements(data)
    fit = fit_usl(workers, throughput, gamma=gamma)
    amdahl = fit_amdahl(workers, throughput)
    # Speedup is against the smallest worker count measured (one worker, ideally). Karp–Flatt
    # then uses p = N / N_min, the scale factor over that baseline; with N_min = 1 it is plain N.
    base_n, base_x = workers[0], throughput[0]
    speedups = [x / base_x for x in throughput]
    scale = [n / base_n for n in workers]
    kf = karp_flatt(scale, speedups)
    diagnosis = diagnose(workers, kf, fit)
    points = [
        {"workers": n, "throughput": x, "speedup": s, "karp_flatt": e}
        for n, x, s, e in zip(workers, throughput, speedups, kf, strict=True)
    ]
    if json_out:
        report: dict[str, Any] = {
            "sigma": fit.sigma,
            "kappa": fit.kappa,
            "gamma": fit.gamma,
            "peak_workers": _num(fit.peak_workers),
            "karp_flatt": kf,
            "diagnosis": diagnosis,
            "points": points,
            "amdahl": {
                "serial_fraction": amdahl.serial_fraction,
                "gamma": amdahl.gamma,
                "max_speedup": _num(amdahl.max_speedup),
                "r_squared": _num(amdahl.r_squared),
            },
            "r_squared": _num(fit.r_squared),
        }
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return 0
    out = Console(highlight=False)
    base = "1 worker" if base_n == 1 else f"{base_n:g} workers"
    table = Table(box=box.SIMPLE_HEAD, title=f"{data}", title_justify="left")
    table.add_column("workers", justify="right")
    table.add_column("throughput", justify="right")
    table.add_column("fitted", justify="right")
    table.add_column(f"speedup vs {base}", justify="right")
    table.add_column("Karp–Flatt e", justify="right")
    for point, n in zip(points, workers, strict=True):
        table.add_row(
            f"{n:g}",
            _fmt(point["throughput"], ".6g"),
            _fmt(fit.predict(n)),
            _fmt(point["speedup"], ".3g"),
            _fmt(point["karp_flatt"], ".4f"),
        )
    out.print(table)
    gamma_note = " (given)" if gamma is not None else ""
    peak = (
        "below 1 (throughput falls from the first worker)"
        if fit.peak_workers < 1
        else _fmt(fit.peak_workers, ".4g")
    )
    out.print(
        f"USL     σ = {fit.sigma:.4g}   κ = {fit.kappa:.4g}   γ = {fit.gamma:.6g}{gamma_note}"
        f"   peak N* = {peak}   R² = {fit.r_squared:.4f}"
    )
    serial = (
        f"serial fraction = {100 * amdahl.serial_fraction:.3g}%"
        if amdahl.serial_fraction <= 1
        else f"σ = {amdahl.serial_fraction:.3g} > 1: no serial fraction fits (more workers slower)"
    )
    out.print(
        f"Amdahl  {serial}"
        f"   max speedup = {_fmt(amdahl.max_speedup, '.3g')}×   R² = {amdahl.r_squared:.4f}"
    )
    out.print(diagnosis, markup=False)
    return 0
