"""Waivers in the admin: a manager or the requirement's owner asks, another manager approves, either withdraws.

Every write goes through `governance.waivers`; waivers of other programs do not exist for the user. A waiver is
never edited or deleted here: it changes only by the approve and revoke actions, and its history shows who did
what. Rights come from the program role (the services decide each waiver), not from model permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from governance import waivers
from governance.models import Waiver
from roadmap import access
from roadmap.admin import ScopedHistoryAdmin
from roadmap.models import Role

REQUEST_FIELDS = ["item", "metric", "type", "reason", "expires_at"]
RECORD_FIELDS = [
    "program", "item", "metric", "type", "reason", "expires_at", "state", "requested_by", "created_at",
    "approved_by", "approved_at", "revoked_at",
]  # fmt: skip


class WaiverRequestForm(forms.ModelForm):
    """Shows every refusal of `waiver_request` next to its field before anything is written."""

    requester: Any = None  # set per request by WaiverAdmin.get_form

    class Meta:
        model = Waiver
        fields = REQUEST_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is not None or self.errors:
            return cleaned
        try:
            waivers.waiver_request_check(
                by=self.requester,
                item=cleaned.get("item"),
                metric=cleaned.get("metric"),
                type=cleaned.get("type", ""),
                reason=cleaned.get("reason", ""),
                expires_at=cleaned.get("expires_at"),
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned


class WaiverStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(waivers.WaiverState.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Waiver]) -> QuerySet[Waiver]:
        if self.value() in waivers.WaiverState.values:
            return waivers.waivers_with_state(queryset, self.value())
        return queryset


@admin.register(Waiver)
class WaiverAdmin(ScopedHistoryAdmin):
    form = WaiverRequestForm
    list_display = ["target", "type", "program", "requested_by", "approved_by", "expires_at", "state"]
    list_filter = [("program", admin.RelatedOnlyFieldListFilter), "type", WaiverStateFilter]
    list_select_related = ["program", "item", "metric", "requested_by", "approved_by"]
    search_fields = ["reason", "item__key", "item__title", "metric__key", "metric__name"]
    ordering = ["-created_at"]
    actions = ["approve_selected", "revoke_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Waiver]:
        return super().get_queryset(request).for_user(request.user)

    # --- who may do what: the program role; the services check each waiver ------------------------------

    def _roles(self, request: HttpRequest) -> set[str]:
        # Asked several times per page (index, changelist, actions); one query per request is enough.
        if not hasattr(request, "_waiver_roles"):
            request._waiver_roles = set(access.roles_by_program(request.user).values())  # type: ignore[attr-defined]
        return request._waiver_roles  # type: ignore[attr-defined]

    def has_view_permission(self, request: HttpRequest, obj: Waiver | None = None) -> bool:
        return request.user.is_superuser or bool(self._roles(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or bool(self._roles(request) & waivers.REQUESTING_ROLES)

    def has_change_permission(self, request: HttpRequest, obj: Waiver | None = None) -> bool:
        return False  # a waiver changes only through the approve and revoke actions

    def has_delete_permission(self, request: HttpRequest, obj: Waiver | None = None) -> bool:
        return False  # the record of an exception outlives it: revoke instead

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or Role.MANAGER in self._roles(request)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request)

    # --- the request form and the read-only record ---------------------------------------------------------

    def get_fields(self, request: HttpRequest, obj: Waiver | None = None) -> list[str]:
        return list(REQUEST_FIELDS if obj is None else RECORD_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Waiver | None = None) -> list[str]:
        return [] if obj is None else list(RECORD_FIELDS)

    def get_form(
        self, request: HttpRequest, obj: Waiver | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        form_class.requester = request.user  # a fresh class for every request
        return form_class

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "item":
            kwargs["queryset"] = waivers.waiver_requestable_items(request.user)
        elif db_field.name == "metric":
            kwargs["queryset"] = waivers.waiver_requestable_metrics(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Waiver, form: forms.ModelForm, change: bool) -> None:
        if change:
            raise PermissionDenied("A waiver changes only through the approve and revoke actions.")
        data = form.cleaned_data
        saved = waivers.waiver_request(
            by=request.user,
            item=data.get("item"),
            metric=data.get("metric"),
            type=data["type"],
            reason=data["reason"],
            expires_at=data["expires_at"],
        )
        obj.__dict__.update(saved.__dict__)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied("Waivers are not reverted; revoke the waiver and request a new one.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    # --- columns -------------------------------------------------------------------------------------------

    @admin.display(description="Requirement")
    def target(self, waiver: Waiver) -> str:
        return str(waiver.item or waiver.metric)

    @admin.display(description="State")
    def state(self, waiver: Waiver) -> str:
        return waivers.waiver_state(waiver).label

    # --- actions -------------------------------------------------------------------------------------------

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[Waiver],
        decide: Callable[[Waiver], Waiver],
        done: str,
    ) -> None:
        """Each waiver is decided on its own; the refusals are listed with their reasons."""
        changed, refused = 0, []
        for waiver in queryset.select_related("item", "metric"):
            try:
                decide(waiver)
            except (PermissionDenied, ValidationError) as exc:
                why = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                refused.append(f"{waiver}: {why}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} waiver(s) {done}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not {done}: " + " | ".join(refused), messages.ERROR)

    @admin.action(description="Approve selected waivers", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Waiver]) -> None:
        self._decide(
            request, queryset, lambda w: waivers.waiver_approve(waiver=w, by=request.user), "approved"
        )

    @admin.action(description="Revoke selected waivers", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Waiver]) -> None:
        self._decide(
            request,
            queryset,
            lambda w: waivers.waiver_revoke(waiver=w, by=request.user),
            "revoked",
        )
