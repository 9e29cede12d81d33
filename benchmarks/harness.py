"""Timing helpers for the benchmarks.

A benchmark reports `Figure`s (a measured value against a target), times work with `best_of`, compares
timings with `ratio`, and runs inside `fresh_database()` so it never writes to a developer's database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter

from django.db import connection
from django.test.utils import setup_test_environment, teardown_test_environment

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, target: value >= target,
    "<=": lambda value, target: value <= target,
}


@dataclass(frozen=True)
class Figure:
    """One measured value and the target it must meet, e.g. a speed-up ratio that must stay >= 0.5."""

    name: str
    value: float
    op: str  # ">=" or "<="
    target: float

    def __post_init__(self) -> None:
        # A typo such as "=>" would otherwise make every comparison silently fail or pass.
        if self.op not in _COMPARISONS:
            raise ValueError(f"Figure {self.name!r}: op must be '>=' or '<=', not {self.op!r}")

    @property
    def ok(self) -> bool:
        # NaN compares false both ways, so a broken measurement is a MISS, never a pass.
        return _COMPARISONS[self.op](self.value, self.target)

    def line(self) -> str:
        # `.15g` keeps targets short (0.5, 10, 1.2) without rounding away digits a target really has.
        status = "ok" if self.ok else "MISS"
        return f"bench {self.name}: {self.value:.2f} (target {self.op} {self.target:.15g}) {status}"


def best_of(fn: Callable[[], object], *, repeat: int = 3, setup: Callable[[], object] | None = None) -> float:
    """Run `setup` (untimed) then `fn`, `repeat` times; return the fastest run of `fn` in seconds."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")
    timings = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = perf_counter()
        fn()
        timings.append(perf_counter() - started)
    # The minimum, not the mean: on a shared machine other processes only ever add time, so the
    # fastest run is the one closest to the cost of the code itself.
    return min(timings)


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, refusing a denominator that cannot be a real timing."""
    # `not > 0` also catches NaN; a zero or negative timing means the measurement is broken, and
    # dividing by it would report a meaningless (or infinite) speed-up as a pass or a miss.
    if not denominator > 0:
        raise ValueError(f"ratio denominator must be a positive timing, not {denominator!r}")
    return numerator / denominator


@contextmanager
def fresh_database() -> Iterator[None]:
    """Create (and migrate) a throwaway test database for DATABASES['default']; destroy it afterwards."""
    test_settings = connection.settings_dict.setdefault("TEST", {})
    given_test_name = test_settings.get("NAME")
    if given_test_name is None and connection.vendor != "sqlite":
        # Not Django's default `test_<name>`: autoclobber would drop the database of a pytest run
        # going on at the same time. SQLite keeps its default, a private in-memory database.
        test_settings["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    # Read before creating: create_test_db returns the *test* name, and destroy_test_db needs the real
    # one to point the connection back at it.
    real_name = connection.settings_dict["NAME"]
    setup_test_environment()
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
        yield
    finally:
        # The name changes once the database exists, so one whose migrations failed is dropped too.
        if connection.settings_dict["NAME"] != real_name:
            connection.creation.destroy_test_db(real_name, verbosity=0)
        teardown_test_environment()
        test_settings["NAME"] = given_test_name
