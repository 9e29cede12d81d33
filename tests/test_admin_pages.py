"""Every admin page a user can reach renders: changelists, add forms and change forms of every model."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from governance import services as governance_services
from governance.models import ControlledDocument
from roadmap import checklists
from scorecards.services import snapshot_save
from strategy.services import strategy_import

pytestmark = pytest.mark.django_db
STRATEGY = (
    Path(__file__).resolve().parents[2] / "shared" / "corpus" / "advanced_cloud_infrastructure_strategy.md"
)


@pytest.fixture
def populated(team, superuser):
    """One row of everything: an imported strategy, a checklist import run, a version in review, a snapshot."""
    strategy_import(data=STRATEGY.read_bytes(), by=None, program_key="alpha")
    checklists.import_run_start(
        program=team.program,
        data=b"section,title\nNetwork,Patch the edge\n",
        source_name="a.csv",
        by=team.manager,
    )
    document = ControlledDocument.objects.get(program=team.program)
    draft = governance_services.version_create_draft(
        document=document, by=team.manager, source_text="v2", label="2"
    )
    governance_services.version_submit(version=draft, by=team.manager)
    snapshot_save(program=team.program, day=team.program.created_at.date())
    return team


@pytest.mark.parametrize("model", [model for model in admin.site._registry], ids=lambda m: m._meta.label)
def test_every_changelist_and_change_form_renders_for_a_superuser(populated, superuser, model):
    client = Client()
    client.force_login(superuser)
    info = model._meta.app_label, model._meta.model_name
    changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == 200
    model_admin = admin.site._registry[model]
    first = model_admin.get_queryset(changelist.wsgi_request).first()
    if first is not None:
        assert client.get(reverse("admin:{}_{}_change".format(*info), args=[first.pk])).status_code == 200
    if model_admin.has_add_permission(changelist.wsgi_request):
        assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200


@pytest.mark.parametrize("persona", ["manager", "contributor", "auditor"])
def test_every_changelist_renders_for_each_staff_role(populated, persona):
    client = Client()
    client.force_login(populated.user(persona))
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code in (200, 403), url
