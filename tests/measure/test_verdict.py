"""The verdict rules on exact numbers: each of the four, in the order they are checked."""

from __future__ import annotations

import pytest

from truepar.measure import Measures, Thresholds, decide
from truepar.measure.verdict import digest

BASE_CPU = Measures(backend="sequential", workers=1, wall_s=2.0, cpu_s=2.0)
BASE_WAIT = Measures(backend="sequential", workers=1, wall_s=2.0, cpu_s=0.01)


def config(
    wall: float, cpu: float, *, w: int = 4, ci: tuple[float, float] | None = None, **kw: object
) -> Measures:
    s = 2.0 / wall
    return Measures(
        backend=str(kw.pop("backend", "threads")),
        workers=w,
        wall_s=wall,
        cpu_s=cpu,
        speedup=s,
        speedup_ci=ci or (s * 0.95, s * 1.05),
        **kw,  # type: ignore[arg-type]
    )


def test_cpu_overlapping_with_the_same_work_is_parallel() -> None:
    verdict, reasons = decide(config(0.55, 2.1), BASE_CPU)
    assert verdict == "parallel"
    assert any("cores used 3.82 > 1.2" in r for r in reasons)
    assert any("1.05× the sequential run's" in r for r in reasons)


def test_a_big_wall_gain_without_cpu_overlap_is_never_parallel() -> None:
    verdict, reasons = decide(config(0.5, 0.02), BASE_WAIT)
    assert verdict == "concurrent"
    assert any("cores used 0.04 ≤ 1.2" in r for r in reasons)


def test_no_clear_gain_is_serialized_and_names_the_gil() -> None:
    verdict, reasons = decide(config(2.05, 2.05, ci=(0.95, 1.0)), BASE_CPU)
    assert verdict == "serialized"
    assert any("not above 1.1" in r for r in reasons)
    assert any("GIL" in r for r in reasons)
    verdict, reasons = decide(config(2.0, 2.0, ci=(0.98, 1.02), backend="async"), BASE_CPU)
    assert verdict == "serialized"
    assert any("event loop" in r for r in reasons)


def test_one_worker_is_serialized_whatever_the_wall_time() -> None:
    verdict, reasons = decide(config(1.0, 2.0, w=1), BASE_CPU)
    assert verdict == "serialized"
    assert "1 worker" in reasons[0]


def test_shrinking_work_on_a_cpu_bound_baseline_is_suspect() -> None:
    # The seed's fake proof: 3.8× faster on the wall clock, 1.01 cores, 0.27× the CPU.
    verdict, reasons = decide(config(0.526, 0.53, ci=(3.6, 3.9)), BASE_CPU)
    assert verdict == "suspect"
    assert any("CPU spent 0.27× the sequential run's" in r and "shrank" in r for r in reasons)


def test_little_cpu_is_fine_when_the_baseline_only_waited() -> None:
    assert decide(config(0.5, 0.002), BASE_WAIT)[0] == "concurrent"


def test_different_results_are_suspect_and_named() -> None:
    base = Measures(
        "sequential", 1, 2.0, 0.01, digests={"a": frozenset({"x"}), "b": frozenset({"y"})}
    )
    cfg = config(0.5, 0.01, digests={"a": frozenset({"x"}), "b": frozenset({"z"})})
    verdict, reasons = decide(cfg, base)
    assert verdict == "suspect"
    assert "1 op(s): b" in reasons[0]


def test_results_that_vary_between_sequential_runs_are_not_compared() -> None:
    base = Measures("sequential", 1, 2.0, 0.01, digests={"clock": frozenset({"t1", "t2"})})
    cfg = config(0.5, 0.01, digests={"clock": frozenset({"t3"})})
    assert decide(cfg, base)[0] == "concurrent"


def test_ops_failing_only_here_are_suspect() -> None:
    cfg = config(0.5, 0.01, failed_ops=frozenset({"pickle-me"}))
    verdict, reasons = decide(cfg, BASE_WAIT)
    assert verdict == "suspect"
    assert "pickle-me" in reasons[0]


def test_thresholds_are_overridable_and_checked() -> None:
    cfg = config(0.55, 2.1)
    assert decide(cfg, BASE_CPU, Thresholds(parallel_cores=4.0))[0] == "concurrent"
    assert decide(cfg, BASE_CPU, Thresholds(min_speedup=4.0))[0] == "serialized"
    with pytest.raises(ValueError, match="min_speedup"):
        Thresholds(min_speedup=0)


def test_digest_is_stable_across_key_order_and_sensitive_to_values() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert digest(b"abc") == digest("abc")


def test_cpu_that_the_baseline_never_needed_is_overhead_not_parallel() -> None:
    # The sequential run only waited; the configuration burned 1.6 cores (worker start-up, ...).
    verdict, reasons = decide(config(0.5, 0.8), BASE_WAIT)
    assert verdict == "concurrent"
    assert any("extra CPU is overhead" in r for r in reasons)


def test_parallel_at_a_cost_says_where_the_cpu_went() -> None:
    verdict, reasons = decide(config(1.0, 3.2), BASE_CPU)  # 1.6× the sequential CPU
    assert verdict == "parallel"
    assert any("1.60× the sequential run's" in r and "overhead" in r for r in reasons)


@pytest.mark.parametrize(
    "bad", [{"min_speedup": 0.9}, {"cpu_heavy": 1.5}, {"min_work_ratio": 2.0}, {"max_cv": 0}]
)
def test_thresholds_that_make_no_sense_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**bad)


def test_the_words_follow_the_cpu_spent() -> None:
    # 1.9× the baseline's CPU with no clear gain: never "the same work was done".
    verdict, reasons = decide(config(1.9, 3.8, ci=(0.98, 1.08)), BASE_CPU)
    assert verdict == "serialized"
    text = " ".join(reasons)
    assert "the same work was done" not in text
    assert "1.90× the sequential run's" in text and "90% more CPU" in text
    _, close = decide(config(1.9, 2.2, ci=(0.98, 1.08)), BASE_CPU)
    assert any("1.10× the sequential run's: the same work was done" in r for r in close)
