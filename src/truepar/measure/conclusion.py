"""What ``prove`` says in plain words: one line per kernel backend, one for the controls, and
an overall line. Why a backend came out serialized is read from its capabilities."""

from __future__ import annotations

from collections.abc import Sequence

from truepar.backends import known_backend_class
from truepar.engine.environment import free_threaded_build
from truepar.measure.prove_results import ProveResult


def conclude(
    results: Sequence[ProveResult], *, gil: bool, cores: int, complete: bool = True
) -> list[str]:
    """The plain-language conclusion: one line per kernel backend, one for the controls, and
    an overall line."""
    lines: list[str] = []
    kernel = [r for r in results if _is_kernel(r)]
    controls = [r for r in results if r.name.startswith("control: ")]
    for r in kernel:
        lines.append(_backend_line(r, gil=gil, cores=cores))
    if controls:
        marks = ", ".join(
            f"{r.name.removeprefix('control: ').split('/')[0]} {r.verdict}"
            + ("" if r.as_expected else f" (expected {r.expected})")
            for r in controls
        )
        missed = [r for r in controls if not r.as_expected]
        if missed:
            lines.append(
                f"controls: {marks} — {len(missed)} control(s) did not come out as they must: "
                "the verdicts cannot be trusted on this machine right now (busy? try --repeat 5)"
            )
        else:
            lines.append(
                f"controls: {marks} — as expected: the verdicts tell waiting, GIL-free C code "
                "and a time-bounded fake apart here"
            )
    lines.append(_overall(results, gil=gil, cores=cores, complete=complete))
    return lines


def _is_kernel(r: ProveResult) -> bool:
    """The kernel's results: ``kernel/…``, and ``kernel (last)/…`` (Ray, run after the rest)."""
    return r.name.split("/")[0] in ("kernel", "kernel (last)")


def _backend_line(r: ProveResult, *, gil: bool, cores: int) -> str:
    backend = r.name.split("/", 1)[1]
    numbers = f"{r.cores_used:.2f} cores used, {r.speedup:.2f}× with {r.workers} tasks"
    if not r.checksums_ok:
        return (
            f"{backend}: INVALID — {r.wrong} of {r.checked} task results were wrong or missing "
            f"(verdict {r.verdict} does not count); {numbers}"
        )
    if not r.as_expected:
        why = r.reasons[0] if r.reasons else ""
        return f"{backend}: {r.verdict}, NOT the expected {r.expected} — {why}; {numbers}"
    cls = known_backend_class(r.backend)
    parallel = cls.cpu_parallel if cls is not None else "yes"
    if r.verdict == "parallel":
        what = "free-threaded CPython with the GIL off: " if parallel == "without_gil" else ""
        return (
            f"{backend}: parallel — {what}{r.cores_used:.2f} cores used, "
            f"{r.speedup:.2f}× on {cores} core(s)"
        )
    if parallel == "without_gil":
        why = "this CPython has the GIL enabled" if gil else "only one core is available"
        if gil and free_threaded_build():
            why = "this is a free-threaded build, but the GIL is enabled (PYTHON_GIL=1?)"
    elif cls is not None and cls.event_loop:
        why = "pure-Python work blocks the event loop: one task at a time"
    else:
        why = "only one core is available" if cores < 2 else "no clear gain"
    return f"{backend}: {r.verdict} — {why}; {numbers}"


def _overall(results: Sequence[ProveResult], *, gil: bool, cores: int, complete: bool) -> str:
    if not complete:
        return "overall: INTERRUPTED — only the experiments above finished; nothing is proven"
    bad = [r for r in results if not r.checksums_ok]
    if bad:
        wrong = sum(r.wrong for r in bad)
        return (
            f"overall: INVALID — {wrong} task result(s) did not match the value computed "
            f"in-process ({', '.join(r.name for r in bad)}): these measurements prove nothing"
        )
    missed = [r for r in results if not r.as_expected]
    if missed:
        return (
            f"overall: NOT AS EXPECTED — {', '.join(r.name for r in missed)}: see the reasons; "
            "a busy machine or short tasks blur verdicts (check the load, use --repeat 5)"
        )
    real = [r for r in results if _is_kernel(r) and r.verdict == "parallel"]
    if not real:
        return (
            f"overall: Python code does not run in parallel here ({cores} core(s)); "
            "every verdict as expected"
        )
    best = max(real, key=lambda r: r.speedup)
    with_ = " and ".join(r.backend for r in real)
    note = "" if not gil else ", not with threads (the GIL)"
    return (
        f"overall: parallelism is real here — Python code runs in parallel with {with_} "
        f"(best {best.speedup:.2f}× on {cores} cores){note}; every verdict as expected, "
        "every checksum verified"
    )
