"""factory_boy factories: the one place tests build objects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from roadmap.models import ChecklistItem, Phase, Program, ProgramMembership, Role, Section
from roadmap.services import membership_save


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    key = factory.Sequence(lambda n: f"program-{n}")
    title = factory.Sequence(lambda n: f"Program {n}")
    status = Program.Status.ACTIVE
    start_date = date(2026, 1, 1)


class PhaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Phase

    program = factory.SubFactory(ProgramFactory)
    order = factory.Sequence(lambda n: n + 1)
    code = factory.Sequence(lambda n: f"P{n + 1}")
    name = factory.Sequence(lambda n: f"Phase {n + 1}")
    start_month = 1
    end_month = 6
    target_level = 1


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    program = factory.SubFactory(ProgramFactory)
    title = factory.Sequence(lambda n: f"Section {n}")
    order = factory.Sequence(lambda n: n)


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChecklistItem

    section = factory.SubFactory(SectionFactory)
    program = factory.LazyAttribute(lambda item: item.section.program)
    phase = factory.LazyAttribute(lambda item: item.section.phase)
    key = factory.Sequence(lambda n: f"item-{n}")
    ref = factory.Sequence(lambda n: f"1.{n}")
    title = factory.Sequence(lambda n: f"Do the thing number {n}")
    weight = Decimal("1")


def member(program: Program, role: str, username: str | None = None) -> object:
    """A user with `role` in `program`, granted through the same service the admin uses."""
    user = UserFactory(username=username) if username else UserFactory()
    membership_save(membership=ProgramMembership(user=user, program=program, role=Role(role)), by=None)
    user.refresh_from_db()
    return user


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "metrics.Metric"  # by label: this block is appended, the imports above stay as they were

    program = factory.SubFactory(ProgramFactory)
    key = factory.Sequence(lambda n: f"metric-{n}")
    name = factory.Sequence(lambda n: f"Metric {n}")
    unit = "%"
    target = Decimal("99.9")
