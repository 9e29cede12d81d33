"""Cairn's URLs plus the bare views the web benchmarks compare against (floors, not features).

/bench/items/?program=<key>&page_size=100 — the first 100 current items of a program, in the API's order, as
JSON with the API list's fields, straight from `.values()`: no authentication, no serializer, no pagination count.

/bench/dashboard/<key>/ — every current item of the program (the columns the maturity engine reads) and its
phases, straight from `.values()`, tallied by phase and status into a one-table template. The dashboard must at
least read each current item once and render a page; this does only that, so it is the dashboard's floor.
"""

from __future__ import annotations

from collections import Counter

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Case, F, Q, Value, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import include, path
from django.utils import timezone

from roadmap.models import ChecklistItem, Phase
from roadmap.serializers import ChecklistItemSerializer

# The API list's fields, read from its serializer so the two stay the same; the four below come from joins or
# are computed, and are annotated under their own names.
JOINED = {"program", "phase", "owner", "is_overdue"}
ITEM_FIELDS = [name for name in ChecklistItemSerializer.Meta.fields if name not in JOINED]


def bare_items(request: HttpRequest) -> JsonResponse:
    size = min(int(request.GET.get("page_size", 100)), 500)
    today = timezone.localdate()
    overdue = Q(due_date__lt=today) & ~Q(
        status__in=[ChecklistItem.Status.DONE, ChecklistItem.Status.NOT_APPLICABLE]
    )
    rows = list(
        ChecklistItem.objects.filter(program__key=request.GET["program"], archived_at__isnull=True)
        .order_by("program_id", "order", "id")
        .annotate(
            program_key=F("program__key"),
            phase_code=F("phase__code"),
            owner_name=F("owner__username"),
            is_overdue=Case(When(overdue, then=Value(True)), default=Value(False)),
        )
        .values(*ITEM_FIELDS, "program_key", "phase_code", "owner_name", "is_overdue")[:size]
    )
    return JsonResponse({"results": rows}, encoder=DjangoJSONEncoder)


def bare_dashboard(request: HttpRequest, key: str) -> HttpResponse:
    items = ChecklistItem.objects.filter(program__key=key, archived_at__isnull=True).values_list(
        "key", "title", "kind", "section_id", "phase_id", "level", "weight", "blocking", "status",
        "valid_for_days", "grace_days", "attested_at", "completed_at",
    )  # fmt: skip
    tally = Counter((row[4], row[8]) for row in items)
    phases = [
        {**phase, "statuses": sorted((status, n) for (pk, status), n in tally.items() if pk == phase["id"])}
        for phase in Phase.objects.filter(program__key=key).order_by("order").values("id", "code", "name")
    ]
    return render(
        request, "bench/dashboard.html", {"key": key, "phases": phases, "items": sum(tally.values())}
    )


urlpatterns = [
    path("bench/items/", bare_items),
    path("bench/dashboard/<slug:key>/", bare_dashboard),
    path("", include("cairn.urls")),
]
