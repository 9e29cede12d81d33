from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import ItemFactory, PhaseFactory, ProgramFactory, SectionFactory, UserFactory, member

UNDER_CI = os.environ.get("CI", "").lower() == "true"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: the services and browser suites must really run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if UNDER_CI and skipped and exitstatus == 0:
        for report in skipped:
            reporter.write_line(f"CI forbids skipped tests: {report.nodeid} {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Each test starts with an empty cache: throttle counts and dashboard figures must not leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@dataclass
class Team:
    """A program with one member per role, an outsider and a second program the team cannot see."""

    program: Any
    phase: Any
    section: Any
    manager: Any
    contributor: Any
    executive: Any
    auditor: Any
    outsider: Any
    other_program: Any
    owned_item: Any  # owned by the contributor
    unowned_item: Any
    foreign_item: Any  # in the other program

    def user(self, persona: str) -> Any:
        return getattr(self, persona)


@pytest.fixture
def team(db: Any) -> Team:
    program = ProgramFactory(key="alpha", title="Alpha")
    phase = PhaseFactory(program=program, code="P1", start_month=1, end_month=6)
    section = SectionFactory(program=program, phase=phase, title="Foundations")
    contributor = member(program, "contributor", "carla")
    other_program = ProgramFactory(key="beta", title="Beta")
    outsider = member(other_program, "manager", "oscar")
    return Team(
        program=program,
        phase=phase,
        section=section,
        manager=member(program, "manager", "maria"),
        contributor=contributor,
        executive=member(program, "executive", "eve"),
        auditor=member(program, "auditor", "aude"),
        outsider=outsider,
        other_program=other_program,
        owned_item=ItemFactory(section=section, owner=contributor, title="Owned by carla"),
        unowned_item=ItemFactory(section=section, title="Nobody's item"),
        foreign_item=ItemFactory(section=SectionFactory(program=other_program), title="Beta's secret item"),
    )


@pytest.fixture
def superuser(db: Any) -> Any:
    return UserFactory(username="root", is_superuser=True, is_staff=True)
