"""The benchmark harness: figures, timing, ratios and the runner's exit status.

The runner tests inject module objects and a database context that creates nothing, so they need no
database; only the fresh_database test builds one, in a subprocess, away from pytest's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import ModuleType

import pytest
from django.db import connection

from benchmarks import harness
from benchmarks.harness import Figure, best_of, ratio
from benchmarks.run import main

ROOT = Path(__file__).resolve().parent.parent


def bench_module(name: str, run: Callable[[], list[Figure]]) -> ModuleType:
    module = ModuleType(f"benchmarks.{name}")
    module.run = run  # type: ignore[attr-defined]
    return module


def passing(name: str) -> ModuleType:
    return bench_module(name, lambda: [Figure(f"{name}_speedup", 2.0, ">=", 1.5)])


def missing(name: str) -> ModuleType:
    return bench_module(name, lambda: [Figure(f"{name}_seconds", 3.0, "<=", 1)])


def raising(name: str) -> ModuleType:
    def run() -> list[Figure]:
        raise RuntimeError("the import blew up")

    return bench_module(name, run)


def run_main(argv: list[str], modules: list[ModuleType]) -> int:
    return main(argv, modules=modules, database=nullcontext)


def test_it_formats_a_met_at_least_target() -> None:
    figure = Figure("import_checklist_10k_vs_bulk_create", 0.5499, ">=", 0.5)
    assert figure.ok
    assert figure.line() == "bench import_checklist_10k_vs_bulk_create: 0.55 (target >= 0.5) ok"


def test_it_formats_a_missed_at_least_target() -> None:
    figure = Figure("speedup", 0.4, ">=", 0.5)
    assert not figure.ok
    assert figure.line() == "bench speedup: 0.40 (target >= 0.5) MISS"


def test_it_formats_a_met_at_most_target() -> None:
    assert Figure("seconds", 9.999, "<=", 10).line() == "bench seconds: 10.00 (target <= 10) ok"


def test_it_formats_a_missed_at_most_target() -> None:
    assert Figure("seconds", 1.25, "<=", 1.2).line() == "bench seconds: 1.25 (target <= 1.2) MISS"


def test_it_counts_a_value_equal_to_the_target_as_met() -> None:
    assert Figure("a", 1.5, ">=", 1.5).ok
    assert Figure("b", 1.5, "<=", 1.5).ok


def test_it_counts_a_nan_value_as_a_miss() -> None:
    assert not Figure("a", float("nan"), ">=", 0).ok
    assert not Figure("b", float("nan"), "<=", 0).ok


def test_it_refuses_an_unknown_comparison() -> None:
    with pytest.raises(ValueError, match="op must be '>=' or '<=', not '=>'"):
        Figure("speedup", 1.0, "=>", 0.5)


def test_it_divides_timings() -> None:
    assert ratio(3.0, 2.0) == 1.5


@pytest.mark.parametrize("denominator", [0.0, -1.0, float("nan")])
def test_it_refuses_a_denominator_that_is_not_a_positive_timing(denominator: float) -> None:
    with pytest.raises(ValueError, match="denominator must be a positive timing"):
        ratio(1.0, denominator)


def test_it_returns_the_fastest_run_and_leaves_setup_untimed(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    ticks = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])  # runs of 3, 1 and 2 seconds

    def clock() -> float:
        events.append("clock")
        return next(ticks)

    monkeypatch.setattr(harness, "perf_counter", clock)

    best = best_of(lambda: events.append("fn"), setup=lambda: events.append("setup"))

    assert best == 1.0
    assert events == ["setup", "clock", "fn", "clock"] * 3


def test_it_refuses_fewer_than_one_repeat() -> None:
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        best_of(lambda: None, repeat=0)


def test_it_exits_0_when_every_figure_meets_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main([], [passing("bench_b"), passing("bench_a")]) == 0

    out = capsys.readouterr().out
    assert out.splitlines() == [
        "bench bench_a_speedup: 2.00 (target >= 1.5) ok",
        "bench bench_b_speedup: 2.00 (target >= 1.5) ok",
        "",
        f"benchmark results ({connection.vendor})",
        "bench bench_a_speedup: 2.00 (target >= 1.5) ok",
        "bench bench_b_speedup: 2.00 (target >= 1.5) ok",
    ]


def test_it_exits_1_when_a_figure_misses(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main([], [passing("bench_a"), missing("bench_b")]) == 1
    assert "bench bench_b_seconds: 3.00 (target <= 1) MISS" in capsys.readouterr().out


def test_it_exits_1_when_a_benchmark_raises_and_still_runs_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main([], [passing("bench_a"), raising("bench_b"), passing("bench_c")]) == 1

    captured = capsys.readouterr()
    assert "bench bench_a_speedup: 2.00 (target >= 1.5) ok" in captured.out
    assert "bench bench_c_speedup: 2.00 (target >= 1.5) ok" in captured.out
    assert "bench bench_b: FAILED" in captured.out
    assert "RuntimeError: the import blew up" in captured.err
    assert "benchmark bench_b raised" in captured.err


def test_it_exits_1_when_a_benchmark_returns_no_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main([], [bench_module("bench_empty", list)]) == 1
    assert "bench_empty.run() returned no figures" in capsys.readouterr().err


def test_it_exits_1_when_there_are_no_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main([], []) == 1
    assert "no benchmarks" in capsys.readouterr().err


def test_it_exits_1_when_no_benchmark_matches_the_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["nothing_like_this"], [passing("bench_a")]) == 1
    assert "no benchmarks matching 'nothing_like_this'" in capsys.readouterr().err


def test_it_skips_a_benchmark_meant_for_other_databases_with_a_line_saying_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = raising("bench_elsewhere")  # raises if run at all
    elsewhere.VENDORS = ("oracle",)  # type: ignore[attr-defined]

    assert run_main([], [elsewhere, passing("bench_a")]) == 0
    assert (
        f"bench bench_elsewhere: measured on oracle only, skipped on {connection.vendor}"
        in capsys.readouterr().out
    )
    # Skipped and nothing else selected: nothing was measured, which is a failure.
    assert run_main(["elsewhere"], [elsewhere]) == 1


def test_it_runs_a_benchmark_on_the_databases_it_names() -> None:
    here = missing("bench_here")
    here.VENDORS = (connection.vendor,)  # type: ignore[attr-defined]

    assert run_main([], [here]) == 1  # it ran, and its figure missed


def test_it_runs_only_the_benchmarks_whose_name_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["import"], [missing("bench_export"), passing("bench_import")]) == 0
    assert "bench_export" not in capsys.readouterr().out


def test_it_runs_every_benchmark_inside_one_database() -> None:
    entered: list[str] = []

    @contextmanager
    def database() -> Iterator[None]:
        entered.append("database")
        yield

    assert main([], modules=[passing("bench_a"), passing("bench_b")], database=database) == 0
    assert entered == ["database"]


def test_it_exits_1_from_the_command_line_when_nothing_matches() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "no_benchmark_has_this_name"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no benchmarks matching 'no_benchmark_has_this_name'" in result.stderr


FRESH_DATABASE_PROBE = """
import django
django.setup()
from django.db import connection
from benchmarks.harness import fresh_database
real_name = connection.settings_dict["NAME"]
with fresh_database():
    print("inside", connection.settings_dict["NAME"] != real_name)
    print("migrated", "roadmap_program" in connection.introspection.table_names())
print("restored", connection.settings_dict["NAME"] == real_name)
"""


def test_it_builds_a_migrated_throwaway_database_and_restores_the_real_one() -> None:
    # A subprocess: creating a test database here would replace the one pytest-django set up.
    result = subprocess.run(
        [sys.executable, "-c", FRESH_DATABASE_PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["inside", "True", "migrated", "True", "restored", "True"]
