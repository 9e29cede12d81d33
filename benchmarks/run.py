"""Run the benchmarks: `python -m benchmarks.run [NAME_SUBSTRING ...]`.

Each `benchmarks/bench_*.py` module exposes `run() -> list[Figure]`; one that only means something on some
databases names them in `VENDORS` (e.g. `("postgresql",)`) and is skipped, with a line saying so, on the
others. Arguments keep only the modules whose name contains one of them. All selected modules run in one
throwaway database; the exit status is 1 when a figure misses its target, a benchmark raises, or nothing was
measured at all.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType

from benchmarks.harness import Figure, fresh_database

PACKAGE = "benchmarks"
PREFIX = "bench_"


def discover() -> dict[str, Callable[[], ModuleType]]:
    """Importers for the bench modules, by short name, sorted; importing waits so a broken one fails alone."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)])
        if info.name.startswith(PREFIX)
    )
    return {name: _importer(f"{PACKAGE}.{name}") for name in names}


def _importer(dotted: str) -> Callable[[], ModuleType]:
    return lambda: importlib.import_module(dotted)


def _given(modules: Sequence[ModuleType]) -> dict[str, Callable[[], ModuleType]]:
    return {module.__name__.rpartition(".")[2]: _loaded(module) for module in modules}


def _loaded(module: ModuleType) -> Callable[[], ModuleType]:
    return lambda: module


def _selected(name: str, substrings: Sequence[str]) -> bool:
    return not substrings or any(substring in name for substring in substrings)


def _run_one(name: str, load: Callable[[], ModuleType]) -> list[Figure]:
    from django.db import connection

    module = load()
    vendors = getattr(module, "VENDORS", None)
    if vendors is not None and connection.vendor not in vendors:
        print(
            f"bench {name}: measured on {', '.join(vendors)} only, skipped on {connection.vendor}", flush=True
        )
        return []
    figures = module.run()
    if not figures:
        # A benchmark that measured nothing would otherwise look like one that met every target.
        raise RuntimeError(f"{name}.run() returned no figures")
    if not all(isinstance(figure, Figure) for figure in figures):
        raise TypeError(f"{name}.run() must return Figure objects, got {figures!r}")
    for figure in figures:
        print(figure.line(), flush=True)
    return figures


def _report(figures: list[Figure], failed: list[str]) -> None:
    from django.db import connection

    print(f"\nbenchmark results ({connection.vendor})")
    for figure in figures:
        print(figure.line())
    for name in failed:
        print(f"bench {name}: FAILED (raised, traceback above)")
    sys.stdout.flush()


def main(
    argv: Sequence[str],
    modules: Sequence[ModuleType] | None = None,
    database: Callable[[], AbstractContextManager[object]] = fresh_database,
) -> int:
    """Run the selected benchmarks; tests inject `modules` and a `database` that creates nothing."""
    benchmarks = discover() if modules is None else _given(modules)
    selected = {name: load for name, load in sorted(benchmarks.items()) if _selected(name, argv)}
    if not selected:
        wanted = f" matching {' '.join(argv)!r}" if argv else ""
        print(f"no benchmarks{wanted}: nothing measured, which is a failure", file=sys.stderr)
        return 1
    figures: list[Figure] = []
    failed: list[str] = []
    with database():
        for name, load in selected.items():
            try:
                figures.extend(_run_one(name, load))
            except Exception:
                # One broken benchmark must not hide the figures of the others.
                traceback.print_exc()
                print(f"benchmark {name} raised; continuing with the others", file=sys.stderr, flush=True)
                failed.append(name)
    _report(figures, failed)
    return 1 if failed or not figures or not all(figure.ok for figure in figures) else 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    sys.exit(main(sys.argv[1:]))
