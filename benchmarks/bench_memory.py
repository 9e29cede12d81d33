"""Memory: the peak resident size of a process importing a 100,000-row checklist CSV.

The import runs in a child process (`python -m benchmarks.bench_memory FILE`), so what the parent has
allocated (Django, the other benchmarks) does not count, and `os.wait4` reads that one child's peak RSS
(`ru_maxrss`, the kernel's high-water mark: what the process really held, interpreter and Django included).
The child reads the file into bytes and imports it through `import_run_start(inline=True)`, as
`manage.py import_checklist` does, into its own throwaway database (on SQLite a file, as deployed).
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure

ROWS = 100_000
PEAK_RSS_MB = 500
CHILD_TIMEOUT = 900  # seconds; the import takes about a minute on a quiet machine


def write_csv(path: Path, rows: int) -> None:
    """`rows` synthetic rows, written one at a time (the parent never holds the file's rows either)."""
    # Imported here: run as `python -m`, this module loads before django.setup(), and these load models.
    from benchmarks.bench_checklist import synthetic_row
    from roadmap.checklists import CANONICAL_COLUMNS

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CANONICAL_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(synthetic_row(index) for index in range(rows))


def peak_rss_mb(path: Path) -> float:
    """Run the import of `path` in a child process; its peak RSS in MiB (it must succeed)."""
    from django.conf import settings

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tests.settings")}
    # 100,000 rows are about 25 MB, over the 20 MB default limit on uploads: the child alone may read more.
    size = path.stat().st_size
    if size > settings.CAIRN_CHECKLIST_MAX_BYTES:
        env["CAIRN_CHECKLIST_MAX_BYTES"] = str(size)
    child = subprocess.Popen(  # noqa: S603 - this interpreter and a path we created
        [sys.executable, "-m", "benchmarks.bench_memory", str(path)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
    )
    try:
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the maximum over every child the
        # parent has waited for (a web benchmark's server, say).
        _, status, usage = _wait4(child.pid, CHILD_TIMEOUT)
    except BaseException:
        child.kill()
        child.wait()
        raise
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen from waiting again
    if child.returncode != 0:
        raise RuntimeError(f"the import child exited with {child.returncode}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def _wait4(pid: int, timeout: float) -> tuple[int, int, resource.struct_rusage]:
    deadline = time.monotonic() + timeout
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        if waited:
            return waited, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"the import child ran longer than {timeout} s")
        time.sleep(0.2)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="cairn-bench-memory-") as directory:
        path = Path(directory) / "checklist-100k.csv"
        write_csv(path, ROWS)
        peak = peak_rss_mb(path)
    print(f"bench checklist_import_100k: peak RSS of the importing process {peak:.0f} MiB", flush=True)
    return [Figure("checklist_import_100k_peak_rss_mb", peak, "<=", PEAK_RSS_MB)]


def _child(path: Path) -> None:
    """Import `path` into a fresh program of a throwaway database of this process's own."""
    from django.db import connection

    from benchmarks.harness import fresh_database
    from roadmap.checklists import import_run_start
    from roadmap.models import Program

    if connection.vendor == "sqlite":
        # A file next to the CSV, not SQLite's default in-memory test database: that one would count the
        # stored rows and their indexes (100 MB and more) as the importer's memory.
        test_name = str(path.with_suffix(".sqlite3"))
    else:
        # Not the parent's bench_<name>: creating it here would drop the database the parent is using.
        test_name = f"bench_{connection.settings_dict['NAME']}_memory"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = test_name
    with fresh_database():
        program = Program.objects.create(key="bench-memory", title="Memory benchmark")
        data = path.read_bytes()
        run, report = import_run_start(
            program=program, data=data, source_name=path.name, by=None, file_format="csv", inline=True
        )
        assert report is not None and report.committed and report.added == ROWS, run.report


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    _child(Path(sys.argv[1]))
