"""Every API route, every admin URL and the dashboard, walked for every persona.

The routes come from the URL resolver, not from a list written by hand: a route without a row in the
expectation tables below fails `test_every_route_has_an_expectation`, so a new endpoint cannot dodge the walk.
Path parameters are filled from one world built once for the module: the team's program "alpha" and the
outsider's program "beta", each with one object of every model. The outsider (oscar) manages beta only.

Beyond the status of each (route, persona), every walk checks what must never leak: no successful answer to a
member of alpha holds a marker of beta's objects (and none to the outsider holds alpha's), and an object of a
program the persona cannot see answers exactly as an id that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from governance import services as governance_services
from governance.models import Acknowledgement, Approval, ControlledDocument, DocumentVersion, Review, Waiver
from governance.waivers import waiver_request
from metrics import services as metrics_services
from metrics.models import CollectionRun, Evidence, EvidenceSource, Measurement, Metric
from roadmap.models import ChecklistItem, ImportRun, Phase, Program, ProgramMembership, Section
from scorecards import services as scorecard_services
from scorecards.models import Scorecard, Snapshot
from tests.factories import ItemFactory, MetricFactory, PhaseFactory, ProgramFactory, SectionFactory, member

pytestmark = pytest.mark.heavy

PERSONAS = ["manager", "contributor", "executive", "auditor", "outsider", "anonymous"]
TEAM = ["manager", "contributor", "executive", "auditor"]
MISSING_ID = 987654321

# Text that only alpha's (beta's) objects carry: a member of one program must never read the other's.
ALPHA_MARK = "zz-alpha-secret"
BETA_MARK = "zz-beta-secret"


# --- the world -------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One program and one object of every model in it, built by its manager through the services."""

    program: Program
    manager: Any
    phase: Phase
    section: Section
    item: ChecklistItem
    membership: ProgramMembership
    import_run: ImportRun
    snapshot: Snapshot
    scorecard: Scorecard
    document: ControlledDocument
    version: DocumentVersion
    review: Review
    approval: Approval
    acknowledgement: Acknowledgement
    waiver: Waiver
    metric: Metric
    measurement: Measurement
    source: EvidenceSource
    run: CollectionRun
    evidence: Evidence

    def by_model(self) -> dict[type, Any]:
        return {
            Program: self.program, Phase: self.phase, Section: self.section, ChecklistItem: self.item,
            ProgramMembership: self.membership, ImportRun: self.import_run, Snapshot: self.snapshot,
            Scorecard: self.scorecard, ControlledDocument: self.document, DocumentVersion: self.version,
            Review: self.review, Approval: self.approval, Acknowledgement: self.acknowledgement,
            Waiver: self.waiver, Metric: self.metric, Measurement: self.measurement, EvidenceSource: self.source,
            CollectionRun: self.run, Evidence: self.evidence,
        }  # fmt: skip


def build_side(program: Program, manager: Any, mark: str, approver: Any, reader: Any) -> Side:
    now = timezone.now()
    phase = PhaseFactory(program=program, code="P1", name=f"Phase {mark}")
    section = SectionFactory(program=program, phase=phase, title=f"Section {mark}")
    item = ItemFactory(section=section, title=f"Item {mark}", key=f"item-{mark}")
    membership = ProgramMembership.objects.get(program=program, user=manager)
    import_run = ImportRun.objects.create(
        program=program, source_name=f"{mark}.csv", file_format="csv", sha256="0" * 64, created_by=manager
    )
    document = ControlledDocument.objects.create(
        program=program,
        doc_type="policy",
        title=f"Document {mark}",
        doc_id=f"DOC-{mark}",
        review_cadence_months=12,
    )
    version = governance_services.version_create_draft(
        document=document, by=manager, source_text=f"# {mark}\n\nText.\n", label="2.0", change_summary=mark
    )
    governance_services.version_submit(version=version, by=manager)
    approval = governance_services.version_decide(
        version=version, by=approver, decision=Approval.Decision.CHANGES_REQUESTED, comment=mark
    )
    review = governance_services.review_open(
        document=document, by=manager, due_on=timezone.localdate() + timedelta(days=30), comment=mark
    )
    acknowledgement = Acknowledgement.objects.create(version=version, user=reader)
    metric = MetricFactory(program=program, key=f"metric-{mark}", name=f"Metric {mark}", owner=None)
    measurement = metrics_services.measurement_record(
        metric=metric, value=Decimal("42"), by=manager, note=mark
    )
    source = EvidenceSource(
        program=program, kind=EvidenceSource.Kind.PUSH, name=f"Source {mark}", metric=metric
    )
    metrics_services.source_save(source=source, by=manager, item_ids=[item.pk])
    run = metrics_services.source_push(source=source, value=Decimal("7"), passed=True, note=mark)
    evidence = metrics_services.evidence_attach(
        item=item,
        by=manager,
        upload=SimpleUploadedFile(f"{mark}.txt", f"evidence {mark}".encode(), content_type="text/plain"),
        note=mark,
    )
    waiver = waiver_request(
        by=manager,
        item=item,
        type=Waiver.Type.RISK_ACCEPTED,
        reason=f"Reason {mark}",
        expires_at=now + timedelta(days=30),
    )
    scorecard, _ = scorecard_services.scorecard_generate(program=program, by=manager)
    return Side(
        program=program, manager=manager, phase=phase, section=section, item=item, membership=membership,
        import_run=import_run, snapshot=scorecard.snapshot, scorecard=scorecard, document=document, version=version,
        review=review, approval=approval, acknowledgement=acknowledgement, waiver=waiver, metric=metric,
        measurement=measurement, source=source, run=run, evidence=evidence,
    )  # fmt: skip


@dataclass
class World:
    alpha: Side
    beta: Side
    users: dict[str, Any]
    root: Any  # a superuser: the forms posted back are the ones the admin renders
    sessions: dict[str, str] = field(default_factory=dict)  # persona -> session key, signed in once

    def user(self, persona: str) -> Any:
        return self.users.get(persona)

    def hidden(self, persona: str) -> Side | None:
        """The side the persona cannot see (None for anonymous, who sees nothing)."""
        if persona == "anonymous":
            return None
        return self.alpha if persona == "outsider" else self.beta


@pytest.fixture(scope="module")
def world(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Built once; every test runs inside it in a savepoint that is rolled back, and the whole is rolled back at
    the end of the module, so nothing leaks into other modules."""
    media = tmp_path_factory.mktemp("access-walk-media")
    with override_settings(MEDIA_ROOT=str(media)), django_db_blocker.unblock(), transaction.atomic():
        alpha_program = ProgramFactory(key="alpha", title=f"Alpha {ALPHA_MARK}")
        beta_program = ProgramFactory(key="beta", title=f"Beta {BETA_MARK}")
        users = {
            "manager": member(alpha_program, "manager", "maria"),
            "contributor": member(alpha_program, "contributor", "carla"),
            "executive": member(alpha_program, "executive", "eve"),
            "auditor": member(alpha_program, "auditor", "aude"),
            "outsider": member(beta_program, "manager", "oscar"),
        }
        alpha_approver = member(alpha_program, "manager", "mona")
        beta_approver = member(beta_program, "manager", "bob")
        beta_reader = member(beta_program, "executive", "bea")
        alpha = build_side(alpha_program, users["manager"], ALPHA_MARK, alpha_approver, users["executive"])
        beta = build_side(beta_program, users["outsider"], BETA_MARK, beta_approver, beta_reader)
        root = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
        sessions = {}
        for persona, user in [*users.items(), ("root", root)]:
            client = Client()
            client.force_login(user)
            sessions[persona] = client.cookies[settings.SESSION_COOKIE_NAME].value
        yield World(alpha=alpha, beta=beta, users=users, root=root, sessions=sessions)
        transaction.set_rollback(True)


# --- the routes ------------------------------------------------------------------------------------------------

WALKED_PREFIXES = ("api/", "admin/", "programs/", "")
# django.contrib.auth's own pages (login, password reset) are the way in, not program data.
UNWALKED_PREFIXES = ("accounts/",)

API_MODELS: dict[str, type] = {
    "program": Program, "phase": Phase, "section": Section, "item": ChecklistItem,
    "membership": ProgramMembership, "import-run": ImportRun, "snapshot": Snapshot, "scorecard": Scorecard,
    "document": ControlledDocument, "document-version": DocumentVersion, "review": Review, "approval": Approval,
    "acknowledgement": Acknowledgement, "waiver": Waiver, "metric": Metric, "measurement": Measurement,
    "evidence-source": EvidenceSource, "collection-run": CollectionRun, "evidence": Evidence,
}  # fmt: skip


@dataclass(frozen=True)
class Route:
    """One URL pattern, with the name its expectations are filed under and what fills its parameters."""

    key: str  # the URL name, or the pattern for unnamed ones ("admin:app_list" gets one route per app)
    pattern: str
    callback: Any
    model: type | None = None
    app_label: str = ""

    @property
    def test_id(self) -> str:
        return self.pattern.replace("(?P<format>[a-z0-9]+)", "FMT").replace("(?P<pk>[^/.]+)", "PK")

    def path(self, obj: Any = None, key: str = "") -> str:
        """The pattern with its parameters filled: `obj` for ids (None: an id that does not exist)."""
        pk = str(obj.pk) if obj is not None else str(MISSING_ID)
        history_id = (
            str(obj.history.first().history_id) if obj is not None and hasattr(obj, "history") else pk
        )
        if self.model is Program and obj is not None:
            key = obj.key
        url = self.pattern
        replacements = [
            ("(?P<pk>[^/.]+)", pk), ("(?P<key>[^/.]+)", key or "no-such-program"),
            ("(?P<format>[a-z0-9]+)", "json"), ("<drf_format_suffix:format>", ".json"),
            ("<path:object_id>", pk), ("<int:pk>", pk), ("<id>", pk), ("<slug:key>", key or "no-such-program"),
            ("([^/]+)/history/([^/]+)/", f"{pk}/history/{history_id}/"),
            ("(?P<url>.*)", "no/such/page/"),
            ("<path:content_type_id>", "1"),
        ]  # fmt: skip
        for old, new in replacements:
            url = url.replace(old, new)
        url = re.sub(r"\(\?P<app_label>[^)]*\)", self.app_label, url)
        url = url.replace("\\.", ".").replace("/?", "").replace("^", "").replace("$", "")
        assert "<" not in url and "(" not in url, f"unfilled parameter in {self.pattern}: {url}"
        return "/" + url

    @property
    def has_object(self) -> bool:
        markers = ("(?P<pk>", "object_id", "<int:pk>", "<id>", "(?P<key>", "([^/]+)/history/", "<slug:key>")
        return self.model is not None and any(marker in self.pattern for marker in markers)

    @property
    def is_format_suffix(self) -> bool:
        return "(?P<format>" in self.pattern or "drf_format_suffix" in self.pattern


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace or ""]))
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = ":".join(filter(None, [namespace, pattern.name or ""])) if pattern.name else ""
            yield prefix + str(pattern.pattern), name, pattern.callback


def _admin_model(pattern: str) -> type | None:
    from django.apps import apps

    match = re.match(r"admin/(\w+)/(\w+)/", pattern)
    if not match:
        return None
    try:
        return apps.get_model(match[1], match[2])
    except LookupError:
        return None


def walked_routes() -> list[Route]:
    from django.contrib import admin

    routes = []
    for pattern, name, callback in _walk(get_resolver().url_patterns):
        if pattern.startswith(UNWALKED_PREFIXES) or not pattern.startswith(WALKED_PREFIXES):
            continue
        key = name or pattern
        if name == "admin:app_list":
            app_labels = sorted({model._meta.app_label for model in admin.site._registry})
            routes += [Route(f"{key}[{label}]", pattern, callback, app_label=label) for label in app_labels]
            continue
        model = None
        if pattern.startswith("admin/"):
            model = _admin_model(pattern)
        elif (
            name
        ):  # a router's "<basename>-<action>"; the longest basename wins (evidence-source over evidence)
            bases = sorted(API_MODELS, key=len, reverse=True)
            model = next((API_MODELS[b] for b in bases if name == b or name.startswith(f"{b}-")), None)
        if "<slug:key>" in pattern:
            model = Program
        routes += [Route(key, pattern, callback, model=model)]
    return routes


ROUTES = walked_routes()


# --- what each persona may do ----------------------------------------------------------------------------------
#
# One row per route: the outcome for manager, contributor, executive, auditor, outsider, anonymous, in that order.
# Object routes are called with alpha's object; the outsider's column is therefore "someone else's object".
#   ok        2xx (the body is checked for the other program's markers)
#   403/404/405/400/401   exactly that status
#   anon      the API's "sign in first": 401 or 403 (the session authenticator has no challenge to send)
#   login     302 to the sign-in page (admin's for /admin/, the site's for the dashboard)
#   missing   admin's "does not exist": 404, or 302 to the admin index (never 200, never 403)
#   redirect  302 to the object's change page (admin's old-style object URL)
#   kept      answered (below 400) without changing anything, e.g. an admin action that selects nothing
#   -         not sent: a write this persona may make (each endpoint's own tests cover it)

OUTCOMES = {"ok", "kept", "400", "401", "403", "404", "405", "anon", "login", "missing", "redirect", "-"}


def row(spec: str) -> dict[str, str]:
    outcomes = spec.split()
    assert len(outcomes) == len(PERSONAS) and set(outcomes) <= OUTCOMES, spec
    return dict(zip(PERSONAS, outcomes, strict=True))


# API reads. Lists answer the outsider 200 with none of alpha's rows (the leak check asserts it).
API_LIST = "ok ok ok ok ok anon"
API_DETAIL = "ok ok ok ok 404 anon"
API_POST_ONLY = "405 405 405 405 405 anon"  # an action route answers GET with 405 for everyone signed in
# Admin pages of objects that belong to a program (ProgramScopedAdmin and the record admins).
CHANGELIST = "ok ok login ok ok login"
CHANGE = "ok ok login ok missing login"
ADD_BY_MANAGERS = "ok 403 login 403 ok login"
ADD_BY_MANAGERS_AND_OWNERS = "ok ok login 403 ok login"  # contributors add for what they own
NO_ADD = "403 403 login 403 403 login"
NO_DELETE = "403 403 login 403 403 login"
OBJECT_URL = "redirect redirect login redirect redirect login"
# Models that no program role may touch (auth groups, tokens, beat schedules): staff get 403.
STAFF_FORBIDDEN = "403 403 login 403 403 login"
ADMIN_PAGE = "ok ok login ok ok login"

GET: dict[str, str] = {
    # dashboard: members of alpha see it, the outsider gets 404 like any unknown key
    "dashboard:programs": "ok ok ok ok ok login",
    "dashboard:program": "ok ok ok ok 404 login",
    "dashboard:generate": "405 405 405 405 405 login",  # POST only
    # admin site pages
    "admin:index": ADMIN_PAGE,
    "admin:login": "redirect redirect ok redirect redirect ok",  # signed-in staff are sent on to the index
    "admin:logout": "405 405 redirect 405 405 redirect",  # POST only for staff; others bounce to the login page
    "admin:password_change": ADMIN_PAGE,
    "admin:password_change_done": ADMIN_PAGE,
    "admin:autocomplete": "403 403 login 403 403 login",  # without its query parameters
    "admin:jsi18n": ADMIN_PAGE,
    "admin:view_on_site": "404 404 login 404 404 login",  # no model has a public page
    "admin/(?P<url>.*)$": "404 404 login 404 404 login",
    "admin:app_list[auth]": "ok 404 login 404 ok login",  # managers pick members from the user list
    "admin:app_list[authtoken]": "404 404 login 404 404 login",
    "admin:app_list[django_celery_beat]": "404 404 login 404 404 login",
    "admin:app_list[cairn]": "404 404 login 404 404 login",  # the outbox is for superusers
    "admin:app_list[governance]": ADMIN_PAGE,
    "admin:app_list[metrics]": ADMIN_PAGE,
    "admin:app_list[roadmap]": ADMIN_PAGE,
    "admin:app_list[scorecards]": ADMIN_PAGE,
    # users: managers may list and pick them (auth.view_user), nobody else; nobody changes them here
    "admin:auth_user_changelist": "ok 403 login 403 ok login",
    "admin:auth_user_change": "ok 403 login 403 ok login",
    "admin:auth_user_history": "ok 403 login 403 ok login",
    "admin:auth_user_add": STAFF_FORBIDDEN,
    "admin:auth_user_delete": STAFF_FORBIDDEN,
    "admin:auth_user_password_change": STAFF_FORBIDDEN,
    "admin/auth/user/<path:object_id>/": OBJECT_URL,
    # the programs themselves and their custom views
    "admin:roadmap_program_changelist": CHANGELIST,
    "admin:roadmap_program_add": ADD_BY_MANAGERS,
    "admin:roadmap_program_change": CHANGE,
    "admin:roadmap_program_history": CHANGE,
    "admin:roadmap_program_simple_history": CHANGE,
    "admin:roadmap_program_delete": NO_DELETE,
    "admin/roadmap/program/<path:object_id>/": OBJECT_URL,
    "admin:roadmap_program_import_strategy": ADD_BY_MANAGERS,
    "admin:roadmap_program_export_strategy": CHANGE,
    "admin:roadmap_program_generate_scorecard": "ok 403 login 403 missing login",
    # checklist items: import for managers, export for those holding export_checklistitem
    "admin:roadmap_checklistitem_import_checklist": ADD_BY_MANAGERS,
    "admin:roadmap_checklistitem_export": CHANGELIST,
    "admin:scorecards_snapshot_maturity": CHANGE,
    # scorecards are not for contributors
    "admin:scorecards_scorecard_changelist": "ok 403 login ok ok login",
    "admin:scorecards_scorecard_change": "ok 403 login ok missing login",
    "admin:scorecards_scorecard_history": "ok missing login ok missing login",
    "admin:scorecards_scorecard_pdf": "ok 403 login ok missing login",
    # memberships: managers remove members
    "admin:roadmap_programmembership_delete": "ok 403 login 403 missing login",
    # evidence files and collector buttons
    "admin:metrics_evidence_download": CHANGE,
    "admin:metrics_evidencesource_run": "405 405 login 405 405 login",  # POST only
    "admin:metrics_evidencesource_rotate": "405 405 login 405 405 login",  # POST only
}

# Every registered program model: its standard admin pages by profile.
ADMIN_MODELS = {
    "roadmap_phase": ADD_BY_MANAGERS, "roadmap_section": ADD_BY_MANAGERS, "roadmap_checklistitem": ADD_BY_MANAGERS,
    "roadmap_programmembership": ADD_BY_MANAGERS, "roadmap_importrun": NO_ADD, "metrics_metric": ADD_BY_MANAGERS,
    "metrics_measurement": ADD_BY_MANAGERS_AND_OWNERS, "metrics_evidencesource": ADD_BY_MANAGERS,
    "metrics_collectionrun": NO_ADD, "metrics_evidence": ADD_BY_MANAGERS_AND_OWNERS,
    "governance_waiver": ADD_BY_MANAGERS_AND_OWNERS, "governance_controlleddocument": NO_ADD,
    "governance_documentversion": ADD_BY_MANAGERS, "governance_review": NO_ADD, "governance_approval": NO_ADD,
    "governance_acknowledgement": NO_ADD, "scorecards_snapshot": NO_ADD, "scorecards_scorecard": NO_ADD,
}  # fmt: skip
# Admins of models without django-simple-history offer no version pages.
UNVERSIONED = {"roadmap_importrun", "metrics_measurement", "metrics_collectionrun", "metrics_evidence",
               "scorecards_snapshot", "scorecards_scorecard"}  # fmt: skip
# Import runs are read by managers and auditors only (roles.py): contributors get 403.
IMPORT_RUN_READ = "ok 403 login ok missing login"
for _model, _add in ADMIN_MODELS.items():
    _read = IMPORT_RUN_READ if _model == "roadmap_importrun" else CHANGE
    for _suffix, _spec in [
        ("changelist", "ok 403 login ok ok login" if _model == "roadmap_importrun" else CHANGELIST),
        ("add", _add), ("change", _read), ("history", _read), ("simple_history", _read), ("delete", NO_DELETE),
    ]:  # fmt: skip
        if _suffix != "simple_history" or _model not in UNVERSIONED:
            GET.setdefault(f"admin:{_model}_{_suffix}", _spec)
    GET.setdefault(f"admin/{_model.replace('_', '/', 1)}/<path:object_id>/", OBJECT_URL)
for _model in [
    "auth_group", "authtoken_tokenproxy", "cairn_outboxmessage", "django_celery_beat_periodictask", "django_celery_beat_clockedschedule",
    "django_celery_beat_crontabschedule", "django_celery_beat_solarschedule", "django_celery_beat_intervalschedule",
]:  # fmt: skip
    for _suffix in ["changelist", "add", "change", "delete"]:
        GET[f"admin:{_model}_{_suffix}"] = STAFF_FORBIDDEN
    GET[f"admin:{_model}_history"] = "missing missing login missing missing login"
    _app, _, _name = _model.rpartition("_") if _model.startswith("django") else _model.partition("_")
    GET[f"admin/{_app}/{_name}/<path:object_id>/"] = OBJECT_URL

API_GET = {
    # programs: members read, the outsider does not learn alpha exists
    "program-list": API_LIST, "program-detail": API_DETAIL,
    "phase-list": API_LIST, "phase-detail": API_DETAIL,
    "section-list": API_LIST, "section-detail": API_DETAIL,
    "item-list": API_LIST, "item-detail": API_DETAIL, "item-bulk-status": API_POST_ONLY,
    "membership-list": API_LIST, "membership-detail": API_DETAIL,
    "import-run-list": API_LIST, "import-run-detail": API_DETAIL,
    "snapshot-list": API_LIST, "snapshot-detail": API_DETAIL,
    # a contributor may not read scorecards: the list leaves them out, a single one is 403
    "scorecard-list": API_LIST, "scorecard-detail": "ok 403 ok ok 404 anon",
    "scorecard-pdf": "ok 403 ok ok 404 anon",
    "document-list": API_LIST, "document-detail": API_DETAIL,
    "document-version-list": API_LIST, "document-version-detail": API_DETAIL,
    "review-list": API_LIST, "review-detail": API_DETAIL,
    "approval-list": API_LIST, "approval-detail": API_DETAIL,
    "acknowledgement-list": API_LIST, "acknowledgement-detail": API_DETAIL,
    "waiver-list": API_LIST, "waiver-detail": API_DETAIL,
    "metric-list": API_LIST, "metric-detail": API_DETAIL,
    "measurement-list": API_LIST, "measurement-detail": API_DETAIL,
    "evidence-source-list": API_LIST, "evidence-source-detail": API_DETAIL,
    "evidence-source-push": "405 405 405 405 405 405",  # token-authenticated, POST only
    "collection-run-list": API_LIST, "collection-run-detail": API_DETAIL,
    "evidence-list": API_LIST, "evidence-detail": API_DETAIL, "evidence-freshness": API_LIST,
    "evidence-file": API_DETAIL,
    # executives hold no export permission (roles.py)
    "export-checklist": "ok ok 403 ok 404 anon",
    "export-strategy": API_DETAIL, "maturity": API_DETAIL,
    "import-checklist": API_POST_ONLY, "import-strategy": API_POST_ONLY, "score": API_POST_ONLY,
    "api-root": API_LIST, "schema": API_LIST, "api-docs": API_LIST,
    "auth-token": "405 405 405 405 405 405",  # POST credentials, DELETE to revoke
}  # fmt: skip
GET.update(API_GET)
for _name in [
    "document-version-" + a for a in ("submit", "approve", "request-changes", "reject", "publish", "obsolete")
]:
    GET[_name] = API_POST_ONLY
for _name in ["review-complete", "acknowledgement-acknowledge", "waiver-approve", "waiver-revoke"]:
    GET[_name] = API_POST_ONLY
for _name in ["evidence-source-run", "evidence-source-rotate-token"]:
    GET[_name] = API_POST_ONLY
# Models without django-simple-history: their admin has no version pages to show.
for _model in ["roadmap_section", "governance_approval", "governance_acknowledgement"]:
    GET[f"admin:{_model}_simple_history"] = "404 404 login 404 404 login"


@dataclass(frozen=True)
class Write:
    """An unsafe request: its method, its body (built from the world) and the outcome per persona."""

    method: str
    spec: str
    body: Any = None  # a function of the World answering the payload, or None for an empty one
    multipart: bool = False
    form: bool = False  # post back the form the admin shows a superuser at this URL, text fields changed
    put_back: bool = False  # PUT what a superuser reads at this URL, text fields changed


def _in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def _upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


NO_WRITE = "405 405 405 405 405 anon"  # read-only endpoints: no such method for anyone signed in
MANAGERS_WRITE = "- 403 403 403 404 anon"  # a detail route: members without the right get 403, others 404
MANAGERS_CREATE = "- 403 403 403 400 anon"  # a create naming alpha: for the outsider, "no such program/item"

WRITES: dict[str, list[Write]] = {
    "program-list": [Write("post", "- 403 403 403 - anon", lambda w: {"key": "gamma", "title": "Gamma"})],
    "program-detail": [
        Write("patch", MANAGERS_WRITE, lambda w: {"subtitle": "changed"}),
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("delete", NO_WRITE),
    ],
    "phase-list": [
        Write(
            "post",
            MANAGERS_CREATE,
            lambda w: {
                "program": "alpha",
                "code": "P9",
                "name": "New",
                "order": 9,
                "start_month": 1,
                "end_month": 2,
            },
        ),
    ],
    "phase-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"name": "changed"}),
        Write("delete", NO_WRITE),
    ],
    "section-list": [Write("post", MANAGERS_CREATE, lambda w: {"program": "alpha", "title": "New"})],
    "section-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"title": "changed"}),
        Write("delete", NO_WRITE),
    ],
    "item-list": [
        Write(
            "post",
            MANAGERS_CREATE,
            lambda w: {"program": "alpha", "section": w.alpha.section.pk, "title": "New"},
        )
    ],
    "item-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"status": "in_progress"}),  # the item is not carla's
        Write("delete", NO_WRITE),
    ],
    "item-bulk-status": [
        Write("post", MANAGERS_CREATE, lambda w: {"ids": [w.alpha.item.pk], "status": "done"})
    ],
    "membership-list": [
        Write("post", NO_WRITE, lambda w: {"program": "alpha", "user": "oscar", "role": "manager"})
    ],
    "membership-detail": [Write("patch", NO_WRITE, lambda w: {"role": "manager"}), Write("delete", NO_WRITE)],
    "import-run-list": [Write("post", NO_WRITE)],
    "import-run-detail": [Write("delete", NO_WRITE)],
    "snapshot-list": [Write("post", NO_WRITE)],
    "snapshot-detail": [Write("delete", NO_WRITE)],
    "scorecard-list": [Write("post", MANAGERS_CREATE, lambda w: {"program": "alpha"})],
    "scorecard-detail": [Write("delete", NO_WRITE)],
    "document-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"title": "changed"}),
        Write("delete", NO_WRITE),
    ],
    "document-version-list": [
        Write(
            "post",
            MANAGERS_CREATE,
            lambda w: {"document": w.alpha.document.pk, "source_text": "x", "label": "3"},
        )
    ],
    "document-version-detail": [
        # a whole version in a PUT always carries more than the draft's text: refused as such, before who asks
        Write("put", "400 400 400 400 404 anon", put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"source_text": "changed"}),
        Write("delete", NO_WRITE),
    ],
    **{
        f"document-version-{action}": [Write("post", MANAGERS_WRITE, lambda w: {"comment": "walk"})]
        for action in ("submit", "approve", "request-changes", "reject", "publish", "obsolete")
    },
    "review-list": [
        Write("post", MANAGERS_CREATE, lambda w: {"document": w.alpha.document.pk, "due_on": "2030-01-01"})
    ],
    "review-complete": [Write("post", MANAGERS_WRITE, lambda w: {"outcome": "no_change"})],
    "approval-list": [Write("post", NO_WRITE)],
    "acknowledgement-acknowledge": [Write("post", "403 403 - 403 404 anon")],  # only the person asked (eve)
    "waiver-list": [
        Write(
            "post",
            MANAGERS_CREATE,
            lambda w: {
                "item": w.alpha.item.pk,
                "type": "risk_accepted",
                "reason": "walk",
                "expires_at": _in_days(10),
            },
        ),
    ],
    "waiver-detail": [Write("patch", NO_WRITE, lambda w: {"reason": "changed"}), Write("delete", NO_WRITE)],
    "waiver-approve": [Write("post", MANAGERS_WRITE)],
    "waiver-revoke": [Write("post", MANAGERS_WRITE, lambda w: {"reason": "walk"})],
    "metric-list": [Write("post", MANAGERS_CREATE, lambda w: {"program": "alpha", "name": "New metric"})],
    "metric-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"name": "changed"}),
        Write("delete", NO_WRITE),
    ],
    "measurement-list": [
        Write("post", MANAGERS_CREATE, lambda w: {"metric": w.alpha.metric.pk, "value": "1"})
    ],
    "measurement-detail": [Write("patch", NO_WRITE, lambda w: {"value": "2"}), Write("delete", NO_WRITE)],
    "evidence-source-list": [
        Write("post", MANAGERS_CREATE, lambda w: {"program": "alpha", "kind": "push", "name": "New source"})
    ],
    "evidence-source-detail": [
        Write("put", MANAGERS_WRITE, put_back=True),
        Write("patch", MANAGERS_WRITE, lambda w: {"name": "changed"}),
        Write("delete", NO_WRITE),
    ],
    "evidence-source-run": [Write("post", MANAGERS_WRITE)],
    "evidence-source-rotate-token": [Write("post", MANAGERS_WRITE)],
    # the push door takes the source's token, never a session: without it everyone gets 401
    "evidence-source-push": [Write("post", "401 401 401 401 401 401", lambda w: {"value": "1"})],
    "collection-run-list": [Write("post", NO_WRITE)],
    "evidence-list": [
        Write(
            "post", MANAGERS_CREATE, lambda w: {"item": w.alpha.item.pk, "url": "https://example.com/proof"}
        )
    ],
    "evidence-detail": [Write("patch", NO_WRITE, lambda w: {"note": "changed"}), Write("delete", NO_WRITE)],
    "import-checklist": [
        Write(
            "post",
            "- 403 403 403 404 anon",
            lambda w: {
                "program": "alpha",
                "file": _upload("walk.csv", "key,title,section\nk1,New,Foundations\n"),
            },
            multipart=True,
        ),
    ],
    "import-strategy": [
        Write(
            "post",
            "- 403 403 403 403 anon",
            lambda w: {"program": "alpha", "file": _upload("walk.md", "# Alpha\n\n## Goals\n\n- [ ] One\n")},
            multipart=True,
        ),
    ],
    "dashboard:generate": [Write("post", "- 403 403 403 404 login")],
    # anyone may ask for a token (bad credentials: 400); signed-in callers revoke their own
    "score": [Write("post", "400 400 400 400 400 anon")],  # the what-if calculator reads no stored data
    "auth-token": [Write("post", "400 400 400 400 400 400"), Write("delete", "ok ok ok ok ok anon")],
}

# Admin: a POST to a page a persona may only read (or not see) is refused and changes nothing.
# The change forms posted are the ones the admin renders to a superuser, so a refusal is not a form error.
ADMIN_CHANGE_POST = "- 403 login 403 missing login"
READ_ONLY_RECORDS = {"roadmap_importrun", "metrics_measurement", "metrics_collectionrun", "metrics_evidence",
                     "governance_waiver", "governance_approval", "governance_acknowledgement", "scorecards_snapshot",
                     "scorecards_scorecard"}  # fmt: skip
for _model in ADMIN_MODELS:
    _spec = NO_DELETE if _model in READ_ONLY_RECORDS else ADMIN_CHANGE_POST
    WRITES.setdefault(f"admin:{_model}_change", [Write("post", _spec, form=True)])
    WRITES.setdefault(f"admin:{_model}_delete", [Write("post", NO_DELETE, lambda w: {"post": "yes"})])
WRITES["admin:roadmap_programmembership_delete"] = [
    Write("post", "- 403 login 403 missing login", lambda w: {"post": "yes"})
]
WRITES.update(
    {
        "admin:metrics_evidencesource_run": [Write("post", "- 403 login 403 missing login")],
        "admin:metrics_evidencesource_rotate": [Write("post", "- 403 login 403 missing login")],
        "admin:roadmap_program_generate_scorecard": [Write("post", "- 403 login 403 missing login")],
        "admin:roadmap_program_import_strategy": [Write("post", "- 403 login 403 - login")],
        "admin:roadmap_checklistitem_import_checklist": [Write("post", "- 403 login 403 - login")],
        "admin:roadmap_checklistitem_changelist": [
            Write(
                "post",
                "- kept login kept kept login",
                lambda w: {"action": "mark_done", "index": "0", "_selected_action": [w.alpha.item.pk]},
            ),
        ],
        "admin:roadmap_program_change": [Write("post", ADMIN_CHANGE_POST, lambda w: {"subtitle": "changed"})],
    }
)
# Reverting to a version is a change: only those who may change the object (waivers: nobody).
for _model in ADMIN_MODELS:
    if GET.get(f"admin:{_model}_simple_history") == CHANGE:
        _spec = NO_DELETE if _model == "governance_waiver" else ADMIN_CHANGE_POST
        WRITES[f"admin:{_model}_simple_history"] = [Write("post", _spec, form=True)]


# --- walking ---------------------------------------------------------------------------------------------------

PROGRAM_MODELS = set(API_MODELS.values())


def route_id(route: Route) -> str:
    return route.key + (".fmt" if route.is_format_suffix else "")


def client_for(world: World, persona: str) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    if persona in world.sessions:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    return client


def object_for(route: Route, side: Side | None) -> Any:
    """The object whose id fills the route: the side's one of the route's model (None: an id that does not exist)."""
    if side is None or route.model is None:
        return None
    if route.model is get_user_model():
        return side.manager
    return side.by_model().get(route.model)


def url_for(route: Route, side: Side | None) -> str:
    return route.path(object_for(route, side), side.program.key if side is not None else "")


def body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def assert_outcome(response: Any, outcome: str, url: str) -> None:
    status, where = response.status_code, response.get("Location", "")
    context = f"{response.request['REQUEST_METHOD']} {url} -> {status} {where}"
    if outcome == "ok":
        assert 200 <= status < 300, context
    elif outcome == "kept":
        assert status < 400, context
    elif outcome == "anon":
        assert status in (401, 403), context
    elif outcome == "login":
        assert status == 302, context
        assert where.startswith(("/admin/login/", "/accounts/login/")), context
    elif outcome == "missing":
        assert status == 404 or (status == 302 and where == "/admin/"), context
    elif outcome == "redirect":
        assert status == 302 and not where.startswith(("/admin/login/", "/accounts/login/")), context
    else:
        assert status == int(outcome), context


def assert_nothing_leaks(persona: str, content: bytes, url: str) -> None:
    hidden = {"outsider": [ALPHA_MARK], "anonymous": [ALPHA_MARK, BETA_MARK]}.get(persona, [BETA_MARK])
    for mark in hidden:
        assert mark.encode() not in content, f"{persona} reads {mark} at {url}"


def assert_same_answer(persona: str, hidden: Any, missing: Any, hidden_id: str, url: str) -> None:
    """A row of a program the caller cannot see answers exactly as an id that does not exist: same status, same
    redirect (ids and the sign-in page's ?next= aside) and, for JSON, the same body."""
    context = f"{persona} tells {url} ({hidden.status_code}) from a missing id ({missing.status_code})"
    assert hidden.status_code == missing.status_code, context
    where = [response.get("Location", "").split("?")[0] for response in (hidden, missing)]
    assert where[0].replace(hidden_id, "ID") == where[1].replace(str(MISSING_ID), "ID"), context
    if missing.get("Content-Type", "").startswith("application/json"):
        assert body(hidden).replace(hidden_id.encode(), b"ID") == body(missing).replace(
            str(MISSING_ID).encode(), b"ID"
        ), context


def fingerprint(world: World, route: Route) -> dict[str, Any]:
    """What a refused write must leave as it was: how many rows of each model, and the route's alpha object."""
    counts = {model.__name__: model.objects.count() for model in PROGRAM_MODELS}
    obj = object_for(route, world.alpha) if route.model in PROGRAM_MODELS else None
    fresh = type(obj).objects.filter(pk=obj.pk).values().first() if obj is not None else None
    return {"counts": counts, "object": fresh}


def admin_form(world: World, url: str) -> dict[str, Any]:
    """The form a superuser gets at `url` (main form and inlines) as a browser would post it back, with every
    free-text field changed, so that a write that goes through shows."""
    from django import forms

    page = client_for(world, "root").get(url)
    assert page.status_code == 200, f"the superuser cannot open {url}: {page.status_code}"
    all_forms = [page.context["adminform"].form]
    for inline in page.context.get("inline_admin_formsets", []):
        all_forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in all_forms:
        for name, form_field in form.fields.items():
            value = form[name].value()
            if isinstance(form_field, forms.BooleanField):
                value = "on" if value else None
            if form is all_forms[0] and name in ("title", "name", "subtitle", "comment", "reason", "note"):
                value = "changed by the walk"
            if value is not None:
                data[form.add_prefix(name)] = value
    return data


# A format-suffix route (items.json) is an alias of its route with the same view: walked for a member, the
# outsider and anonymous callers only, which keeps the module's run time down.
SUFFIX_PERSONAS = {"manager", "outsider", "anonymous"}
WALK_PARAMS = [
    pytest.param(route, persona, id=f"{route_id(route)}-{persona}")
    for route in ROUTES
    for persona in PERSONAS
    if not route.is_format_suffix or persona in SUFFIX_PERSONAS
]


def test_every_route_has_an_expectation() -> None:
    """A new route (or a renamed one) fails here until someone writes down who may call it."""
    keys = {route.key for route in ROUTES}
    missing = sorted(keys - set(GET))
    assert not missing, f"routes without an expectation in GET: {missing}"
    stale = sorted((set(GET) | set(WRITES)) - keys)
    assert not stale, f"expectations for routes that no longer exist: {stale}"
    for route in ROUTES:
        methods = set(getattr(route.callback, "actions", None) or {})
        view_class = getattr(route.callback, "view_class", None)
        if not methods and view_class is not None and route.pattern.startswith("api/v1/"):
            methods = {method for method in ("post", "put", "patch", "delete") if hasattr(view_class, method)}
        unsafe = methods & {"post", "put", "patch", "delete"}
        covered = {write.method for write in WRITES.get(route.key, [])}
        assert unsafe <= covered, (
            f"{route.key} offers {sorted(unsafe - covered)} without an expectation in WRITES"
        )
    for spec in [*GET.values(), *(write.spec for writes in WRITES.values() for write in writes)]:
        row(spec)


@pytest.mark.parametrize(("route", "persona"), WALK_PARAMS)
def test_it_answers_each_persona_as_the_table_says(world: World, db: Any, route: Route, persona: str) -> None:
    client = client_for(world, persona)
    url = url_for(route, world.alpha)

    response = client.get(url)

    assert_outcome(response, row(GET[route.key])[persona], url)
    assert_nothing_leaks(persona, body(response), url)
    hidden = world.hidden(persona)
    if (
        route.has_object
        and route.model in PROGRAM_MODELS
        and hidden is not None
        and not route.is_format_suffix
    ):
        hidden_url = url_for(route, hidden)
        hidden_response = client.get(hidden_url)
        assert_nothing_leaks(persona, body(hidden_response), hidden_url)
        missing = client.get(url_for(route, None))
        assert_same_answer(persona, hidden_response, missing, str(object_for(route, hidden).pk), hidden_url)


WRITE_PARAMS = [
    pytest.param(route, write, persona, id=f"{route_id(route)}-{write.method}-{persona}")
    for route in ROUTES
    if not route.is_format_suffix
    for write in WRITES.get(route.key, [])
    for persona in PERSONAS
    if row(write.spec)[persona] != "-"
]


def send(world: World, client: Any, route: Route, write: Write, url: str) -> Any:
    payload = write.body(world) if write.body else {}
    if write.form:
        payload = admin_form(world, url) | payload
    if write.put_back:
        current = client_for(world, "root").get(url).json()
        payload = current | {name: "changed by the walk" for name in ("title", "name") if name in current}
    # Admin and dashboard forms arrive as a browser sends them; the API speaks JSON.
    browser = write.multipart or route.pattern.startswith(("admin/", "programs/"))
    return getattr(client, write.method)(url, payload, format="multipart" if browser else "json")


@pytest.mark.parametrize(("route", "write", "persona"), WRITE_PARAMS)
def test_it_refuses_writes_to_those_who_may_not_make_them(
    world: World, db: Any, route: Route, write: Write, persona: str
) -> None:
    outcome = row(write.spec)[persona]
    client = client_for(world, persona)
    url = url_for(route, world.alpha)
    before = fingerprint(world, route)

    response = send(world, client, route, write, url)

    assert_outcome(response, outcome, url)
    assert_nothing_leaks(persona, body(response), url)
    if outcome != "ok":
        assert fingerprint(world, route) == before, f"{persona} was refused at {url}, yet something changed"
    if persona == "outsider" and route.has_object and route.model in PROGRAM_MODELS:
        missing = send(world, client, route, write, url_for(route, None)) if not write.form else None
        if missing is not None:
            assert_same_answer(persona, response, missing, str(object_for(route, world.alpha).pk), url)


# --- filters, schema, exports, dashboards -----------------------------------------------------------------------

# Query parameters that name a row of a program; each list is asked with the hidden program's row and with a
# row that does not exist, and must not tell them apart (django-filter checks a foreign key against every row
# of its model unless its queryset is scoped).
FILTER_VALUES = {
    "program": lambda side: side.program.key, "phase": lambda side: side.phase.pk,
    "section": lambda side: side.section.pk, "parent": lambda side: side.section.pk,
    "item": lambda side: side.item.pk, "metric": lambda side: side.metric.pk, "source": lambda side: side.source.pk,
    "document": lambda side: side.document.pk, "version": lambda side: side.version.pk, "run": lambda side: side.run.pk,
    "snapshot": lambda side: side.snapshot.pk,
}  # fmt: skip
MISSING_FILTER_VALUES = {"program": "no-such-program"}


def declared_filters(route: Route) -> list[str]:
    view = route.callback.cls
    names = {"program"}  # also read by hand in several get_queryset()s
    if getattr(view, "filterset_class", None) is not None:
        names |= set(view.filterset_class.base_filters)
    names |= set(getattr(view, "filterset_fields", None) or [])
    # Only those naming a row: a measurement's "source" is where its value came from, not a collector.
    relations = {"program"} | {f.name for f in route.model._meta.get_fields() if f.is_relation}
    return sorted(names & set(FILTER_VALUES) & relations)


LIST_ROUTES = [
    pytest.param(route, id=route.key)
    for route in ROUTES
    if not route.is_format_suffix
    and (getattr(route.callback, "actions", None) or {}).get("get") in ("list", "freshness")
]


@pytest.mark.parametrize("persona", [*TEAM, "outsider"])
@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_filter_answers_another_programs_row_as_a_missing_one(
    world: World, db: Any, route: Route, persona: str
) -> None:
    client = client_for(world, persona)
    url = route.path()
    own, hidden = (world.beta, world.alpha) if persona == "outsider" else (world.alpha, world.beta)
    for name in declared_filters(route):
        value = FILTER_VALUES[name]
        assert client.get(url, {name: value(own)}).status_code == 200, (
            f"{url}?{name}= of {persona}'s own program"
        )
        hidden_response = client.get(url, {name: value(hidden)})
        missing = client.get(url, {name: MISSING_FILTER_VALUES.get(name, MISSING_ID)})
        assert (hidden_response.status_code, hidden_response.json()) == (
            missing.status_code,
            missing.json(),
        ), (
            f"{persona}: {url}?{name}= tells another program's row ({hidden_response.status_code}) from a "
            f"missing one ({missing.status_code})"
        )


def test_the_schema_describes_the_api_without_any_data(world: World, db: Any) -> None:
    """drf-spectacular builds the schema from the views, never from rows (the walk checks every persona's copy
    for markers; here the plain keys and names too)."""
    response = client_for(world, "manager").get("/api/schema/")

    assert response.status_code == 200
    text = body(response).decode()
    for value in [ALPHA_MARK, BETA_MARK, "alpha", "beta", "maria", "oscar", "carla"]:
        assert value not in text, f"the schema holds {value!r}"


def exported_text(content: bytes, file_format: str) -> str:
    if file_format == "xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(BytesIO(content), read_only=True).worksheets[0]
        return "\n".join(str(value) for row in sheet.iter_rows(values_only=True) for value in row)
    return content.decode("utf-8-sig")


EXPORT_FORMAT_NAMES = ["csv", "xlsx", "json", "yaml"]
API_EXPORT = row("ok ok 403 ok 404 anon")  # executives hold no export permission; alpha is unknown to oscar


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("file_format", EXPORT_FORMAT_NAMES)
def test_an_api_export_holds_the_callers_program_only(
    world: World, db: Any, file_format: str, persona: str
) -> None:
    url = f"/api/v1/programs/alpha/checklist/?format={file_format}"
    response = client_for(world, persona).get(url)

    assert_outcome(response, API_EXPORT[persona], url)
    if response.status_code == 200:
        text = exported_text(body(response), file_format)
        assert world.alpha.item.title in text
        assert BETA_MARK not in text
    else:
        assert_nothing_leaks(persona, body(response), url)


@pytest.mark.parametrize("persona", ["manager", "contributor", "auditor", "outsider"])
def test_an_admin_export_holds_the_callers_program_only(world: World, db: Any, persona: str) -> None:
    """Every format the admin offers, with every column ticked, as the browser posts it."""
    client = client_for(world, persona)
    export = "/admin/roadmap/checklistitem/export/"
    form = client.get(export).context["form"]
    columns = {name: "on" for name in form.fields if name.startswith("checklistitem")}
    own, hidden = (world.beta, ALPHA_MARK) if persona == "outsider" else (world.alpha, BETA_MARK)
    offered = [label.lower() for _, label in form.fields["format"].choices if _ != ""]
    assert offered, "the export form offers no format"

    for index, label in enumerate(offered):
        response = client.post(export, {"format": str(index), "resource": "0", **columns}, format="multipart")

        assert response.status_code == 200, label
        text = exported_text(body(response), "xlsx" if "xlsx" in label else "text")
        assert own.item.title in text, label
        assert hidden not in text, label
