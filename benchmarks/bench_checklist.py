"""Checklist spreadsheets: importing and re-importing 10,000 CSV rows against the plain ways of writing them.

Every candidate starts from the same state: one program whose 60 sections ("Area N" with five "Topic M"
children) already exist, so the service creates no sections and all candidates write the same 10,000 items.
Timed runs happen inside savepoints that are rolled back, so repeats start from that state too; the one
exception is a last first import, kept as the state the re-import starts from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import tablib
from django.db import transaction
from import_export.resources import modelresource_factory

from benchmarks.harness import Figure, best_of, ratio
from roadmap.checklists import CANONICAL_COLUMNS, checklist_import
from roadmap.models import ChecklistItem, Program, Section

ROWS = 10_000
AREAS, TOPICS = 10, 5  # 50 leaf sections, "Area N > Topic M"
CHANGED_EVERY = 10  # the re-import changes every tenth row: 10 %
# The file's spellings and the stored values they mean; a default resource does no such translation.
STATUSES = (("not started", "not_started"), ("in progress", "in_progress"), ("done", "done"))
FIRST_DUE = date(2026, 1, 5)


def synthetic_rows(count: int, *, changed_every: int = 0) -> list[dict[str, str]]:
    """`count` rows in the canonical columns; with `changed_every`, every n-th row has a new title or status."""
    return [synthetic_row(index, changed_every=changed_every) for index in range(count)]


def synthetic_row(index: int, *, changed_every: int = 0) -> dict[str, str]:
    """Row `index` of `synthetic_rows` (bench_memory writes 100,000 of them to a file one at a time)."""
    area, topic = index % AREAS + 1, index // AREAS % TOPICS + 1
    title = f"Verify control {index} of area {area} topic {topic} is enforced"
    status = STATUSES[index % 3][0]
    if changed_every and index % changed_every == 0:
        # Half the changed rows are renamed, half move to the next status.
        if index // changed_every % 2:
            title += " and reviewed"
        else:
            status = STATUSES[(index + 1) % 3][0]
    return {
        "key": f"chk-{index:05d}",
        "phase": "",
        "section": f"Area {area} > Topic {topic}",
        "title": title,
        "description": f"Evidence that control {index} works, collected each quarter.",
        "status": status,
        "owner": "",
        "due_date": (FIRST_DUE + timedelta(days=index % 365)).isoformat(),
        "weight": str(index % 2 + 1),
        "level": str(index % 3 + 1),
        "blocking": "yes" if index % 4 else "no",
        "evidence_url": f"https://evidence.example.com/controls/{index}" if index % 5 == 0 else "",
        "notes": "Checked by the quarterly audit." if index % 7 == 0 else "",
    }


def as_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=CANONICAL_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _program_with_sections() -> tuple[Program, dict[str, Section]]:
    """The program every candidate writes into, and its leaf sections by path."""
    program = Program.objects.create(key="bench-checklist", title="Checklist benchmark")
    areas = Section.objects.bulk_create(
        Section(program=program, title=f"Area {area}", order=area) for area in range(1, AREAS + 1)
    )
    topics = Section.objects.bulk_create(
        Section(program=program, parent=parent, title=f"Topic {topic}", order=AREAS + index * TOPICS + topic)
        for index, parent in enumerate(areas)
        for topic in range(1, TOPICS + 1)
    )
    return program, {f"{topic.parent.title} > {topic.title}": topic for topic in topics}


def _model_values(row: dict[str, str]) -> dict[str, object]:
    """The stored values of a row, as the default resource reads them and bulk_create writes them."""
    return {
        "key": row["key"],
        "title": row["title"],
        "description": row["description"],
        "status": dict(STATUSES)[row["status"]],
        "due_date": row["due_date"],
        "weight": row["weight"],
        "level": row["level"],
        "blocking": row["blocking"] == "yes",
        "evidence_url": row["evidence_url"],
        "notes": row["notes"],
    }


@contextmanager
def _rolled_back() -> Iterator[None]:
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _timed_rolled_back(
    fn: Callable[[], object], *, repeat: int = 3, setup: Callable[[], object] | None = None
) -> float:
    def run() -> None:
        with _rolled_back():
            fn()

    return best_of(run, repeat=repeat, setup=setup)


def _import(program: Program, data: bytes, rows: int) -> Callable[[], None]:
    def run() -> None:
        report = checklist_import(program=program, data=data, file_format="csv", by=None)
        # Timing an import that rejected its file (or matched nothing) would time the wrong thing.
        assert report.committed and report.added + report.changed + report.unchanged == rows, report.as_dict()

    return run


def _bulk_create(program: Program, sections: dict[str, Section], rows: list[dict[str, str]]) -> float:
    """The cheapest write Django has: pre-built instances into existing sections, no history, no checks."""
    items: list[ChecklistItem] = []

    def build() -> None:
        # Fresh instances each time: bulk_create sets their ids, and a second run would insert those ids.
        items[:] = [
            ChecklistItem(
                program=program, section=sections[row["section"]], order=index, **_model_values(row)
            )
            for index, row in enumerate(rows, start=1)
        ]

    return _timed_rolled_back(lambda: ChecklistItem.objects.bulk_create(items, batch_size=500), setup=build)


def _bulk_create_with_history_rows(
    program: Program, sections: dict[str, Section], rows: list[dict[str, str]]
) -> float:
    """The same rows the import writes (each item and its history row), with plain bulk inserts only."""
    items: list[ChecklistItem] = []

    def build() -> None:
        items[:] = [
            ChecklistItem(
                program=program, section=sections[row["section"]], order=index, **_model_values(row)
            )
            for index, row in enumerate(rows, start=1)
        ]

    def insert() -> None:
        ChecklistItem.objects.bulk_create(items, batch_size=500)
        ChecklistItem.history.bulk_history_create(items, batch_size=500)

    return _timed_rolled_back(insert, setup=build)


def _import_export_resource(
    program: Program, sections: dict[str, Section], rows: list[dict[str, str]], *, repeat: int
) -> float:
    """What a user gets from django-import-export without tuning: the default resource, row by row.

    `modelresource_factory(ChecklistItem)()` imports by `id`; the file has no id column, so every row is new.
    Foreign keys are ids (its default widget), and it gets every column it can read without translation.
    """
    columns = ["program", "section", *_model_values(rows[0])]
    dataset = tablib.Dataset(headers=columns)
    for row in rows:
        values = _model_values(row)
        values["blocking"] = "1" if values["blocking"] else "0"  # BooleanWidget's spelling
        dataset.append([program.pk, sections[row["section"]].pk, *values.values()])
    resource = modelresource_factory(ChecklistItem)()

    def run() -> None:
        result = resource.import_data(dataset, dry_run=False, raise_errors=True)
        assert result.totals["new"] == len(rows), result.totals

    return _timed_rolled_back(run, repeat=repeat)


def run() -> list[Figure]:
    original = synthetic_rows(ROWS)
    changed = synthetic_rows(ROWS, changed_every=CHANGED_EVERY)
    assert sum(old != new for old, new in zip(original, changed, strict=True)) == ROWS // CHANGED_EVERY
    first_file, changed_file = as_csv(original), as_csv(changed)

    with _rolled_back():
        program, sections = _program_with_sections()
        first_imports = _timed_rolled_back(_import(program, first_file, ROWS), repeat=2)
        bulk_create = _bulk_create(program, sections, original)
        bulk_create_same_rows = _bulk_create_with_history_rows(program, sections, original)
        # The default resource is timed once, not best of several: it writes row by row (two foreign-key
        # look-ups, an INSERT and a history INSERT per row) and takes about a minute for 10,000 rows, so
        # repeats would blow this module's budget. One sample is never faster than the best of several, so
        # on a noisy machine this ratio can flatter the import a little; the target leaves room for that.
        resource = _import_export_resource(program, sections, original, repeat=1)
        # A third first import from the same empty program, kept: it is the state the re-import starts
        # from, so no untimed import is spent on it. The re-imports are savepoints rolled back inside it.
        first_import = min(first_imports, best_of(_import(program, first_file, ROWS), repeat=1))
        reimport = _timed_rolled_back(_import(program, changed_file, ROWS))

    return [
        Figure("checklist_import_10k_rows_per_second", ROWS / first_import, ">=", 1000),
        # The import writes every item and its history row; the baseline inserts exactly those rows with
        # plain bulk_create, skipping reading, validating and diffing the file.
        Figure("checklist_import_10k_vs_bulk_create", ratio(bulk_create_same_rows, first_import), ">=", 0.5),
        # Against items alone the history rows halve the ceiling, and reading and checking the file (a dry
        # run) costs another 0.7-0.9x of a bare bulk_create: about 0.3 (SQLite) / 0.25 (PostgreSQL) is the
        # most any import that keeps history reaches here, so 0.2 is the floor we hold.
        Figure("checklist_import_10k_vs_bulk_create_items_only", ratio(bulk_create, first_import), ">=", 0.2),
        Figure("checklist_import_10k_vs_import_export_resource", ratio(resource, first_import), ">=", 10),
        # Against a first import, not against a plain bulk_update of the 1,000 changed rows: the service
        # must load and diff all 10,000 rows, and that dry run alone took 1.1-1.8 s (SQLite) / 1.2-2.0 s
        # (PostgreSQL) against 0.4-0.5 / 0.7-0.8 s for the whole bulk_update, so >= 0.5 there is out of
        # reach for any re-import that reads the file. Diffing costs about a fifth of a first import and
        # a tenth of the rows should cost about a tenth of its writes, so half a first import leaves
        # room for both.
        Figure("checklist_reimport_10pct_changed_vs_first_import", ratio(reimport, first_import), "<=", 0.5),
    ]
