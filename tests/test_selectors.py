from datetime import date
from decimal import Decimal

import pytest

from roadmap import selectors
from roadmap.models import ChecklistItem
from tests.factories import ItemFactory, PhaseFactory, ProgramFactory, SectionFactory

Status = ChecklistItem.Status
pytestmark = pytest.mark.django_db


def items(section, *specs):
    """specs: (status, weight[, extra fields])"""
    created = []
    for spec in specs:
        status, weight, *extra = spec
        reason = "because" if status in (Status.BLOCKED, Status.NOT_APPLICABLE) else ""
        created.append(
            ItemFactory(
                section=section,
                status=status,
                status_reason=reason,
                weight=Decimal(weight),
                **(extra[0] if extra else {}),
            )
        )
    return created


def test_it_weights_done_fully_in_progress_by_the_program_credit_and_ignores_not_applicable():
    program = ProgramFactory(in_progress_credit=Decimal("0.5"))
    phase = PhaseFactory(program=program)
    section = SectionFactory(program=program, phase=phase)
    items(
        section,
        (Status.DONE, 3),
        (Status.IN_PROGRESS, 2),
        (Status.NOT_STARTED, 5),
        (Status.NOT_APPLICABLE, 100),
    )

    progress = selectors.program_progress([program])[program.pk]

    assert progress.ratio == pytest.approx((3 + 0.5 * 2) / 10)
    assert progress.totals.count == 3
    assert progress.label == "1 of 3 done (40 %)"


def test_it_leaves_archived_items_out_of_progress():
    program = ProgramFactory()
    section = SectionFactory(program=program)
    items(section, (Status.DONE, 1), (Status.NOT_STARTED, 1, {"archived_at": "2026-01-01T00:00:00Z"}))

    assert selectors.program_progress([program])[program.pk].label == "1 of 1 done (100 %)"


def test_it_reports_no_percentage_when_nothing_is_applicable():
    program = ProgramFactory()
    progress = selectors.program_progress([program])[program.pk]
    assert progress.ratio is None
    assert progress.label == "0 of 0 done"


def test_it_rolls_section_progress_up_the_tree():
    program = ProgramFactory(in_progress_credit=Decimal("0"))
    root = SectionFactory(program=program, title="Roadmap")
    child = SectionFactory(program=program, parent=root, title="Phase 1")
    grandchild = SectionFactory(program=program, parent=child, title="Network")
    items(root, (Status.NOT_STARTED, 1))
    items(child, (Status.DONE, 1))
    items(grandchild, (Status.DONE, 2), (Status.IN_PROGRESS, 4))

    progress = selectors.section_progress([root, child, grandchild])

    assert progress[grandchild.pk].label == "1 of 2 done (33 %)"
    assert progress[child.pk].label == "2 of 3 done (43 %)"
    assert progress[root.pk].label == "2 of 4 done (38 %)"
    assert selectors.section_paths(program.pk)[grandchild.pk] == "Roadmap > Phase 1 > Network"


@pytest.mark.parametrize("count", [10, 200])
def test_it_computes_section_progress_in_a_constant_number_of_queries(count, django_assert_num_queries):
    program = ProgramFactory()
    sections = [SectionFactory(program=program) for _ in range(5)]
    for n in range(count):
        ItemFactory(section=sections[n % 5], status=Status.DONE if n % 2 else Status.NOT_STARTED)
    with django_assert_num_queries(3):
        selectors.section_progress(sections)


# --- phase health: expected progress, RAG and forecast --------------------------------------------------


def phase_with(statuses, *, start=date(2026, 1, 1), months=(1, 6), **item_fields):
    program = ProgramFactory(start_date=start)
    phase = PhaseFactory(program=program, start_month=months[0], end_month=months[1])
    section = SectionFactory(program=program, phase=phase)
    for status in statuses:
        items(section, (status, 1, item_fields))
    phase.refresh_from_db()
    return phase


def health(phase, today):
    phase = type(phase).objects.select_related("program").get(pk=phase.pk)
    return selectors.phase_health([phase], today=today)[phase.pk]


def test_it_derives_planned_dates_from_the_program_start():
    phase = phase_with([], months=(7, 12))
    assert phase.planned_start == date(2026, 7, 1)
    assert phase.planned_end == date(2026, 12, 31)


def test_it_is_grey_before_the_window_when_nothing_started():
    phase = phase_with([Status.NOT_STARTED], months=(7, 12))
    assert health(phase, date(2026, 3, 1)).rag == "grey"


def test_it_is_blue_when_everything_applicable_is_done():
    phase = phase_with([Status.DONE, Status.DONE, Status.NOT_APPLICABLE])
    assert health(phase, date(2026, 3, 1)).rag == "blue"


def test_it_is_green_on_plan():
    # Half of the window elapsed (Jan-Jun, at 1 April), 3 of 4 done.
    phase = phase_with([Status.DONE, Status.DONE, Status.DONE, Status.NOT_STARTED])
    result = health(phase, date(2026, 4, 1))
    assert result.rag == "green"
    assert result.expected == pytest.approx(91 / 181)


def test_it_is_amber_when_behind_or_blocked():
    behind = phase_with([Status.DONE] * 2 + [Status.NOT_STARTED] * 4)
    result = health(behind, date(2026, 4, 1))  # a third done at half time: pace 0.66
    assert result.rag == "amber"
    assert result.reasons == ["progress at 66% of plan"]

    blocked = phase_with([Status.DONE, Status.DONE, Status.DONE, Status.BLOCKED])
    result = health(blocked, date(2026, 4, 1))
    assert result.rag == "amber"
    assert "1 item(s) blocked" in result.reasons


def test_it_is_red_when_far_behind_late_or_with_overdue_blocking_items():
    far_behind = phase_with([Status.DONE] + [Status.NOT_STARTED] * 9)
    assert health(far_behind, date(2026, 4, 1)).rag == "red"

    window_closed = phase_with([Status.DONE, Status.NOT_STARTED])
    assert "planned end passed with work open" in health(window_closed, date(2026, 7, 2)).reasons

    overdue = phase_with([Status.DONE, Status.DONE, Status.NOT_STARTED], due_date=date(2026, 2, 1))
    result = health(overdue, date(2026, 2, 2))
    assert result.rag == "red"
    assert "1 blocking item(s) overdue" in result.reasons


def test_it_forecasts_completion_from_the_burn_up():
    phase = phase_with([Status.DONE, Status.NOT_STARTED])
    # Half done 90 days after the start: all done 180 days after it.
    assert health(phase, date(2026, 4, 1)).forecast_end == date(2026, 6, 30)


@pytest.mark.parametrize("count", [10, 200])
def test_it_computes_phase_health_in_one_query(count, django_assert_num_queries):
    program = ProgramFactory()
    phases = [PhaseFactory(program=program) for _ in range(3)]
    for n in range(count):
        ItemFactory(section=SectionFactory(program=program, phase=phases[n % 3]))
    loaded = list(type(phases[0]).objects.select_related("program").filter(program=program))
    with django_assert_num_queries(1):
        selectors.phase_health(loaded, today=date(2026, 3, 1))
