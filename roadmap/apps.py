from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_role_groups(sender: AppConfig, **kwargs: Any) -> None:
    # Permissions exist only after migrate; keeping the role groups in step is part of installing Cairn.
    from roadmap.roles import groups_sync

    groups_sync()


class RoadmapConfig(AppConfig):
    name = "roadmap"
    verbose_name = "Roadmap"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app's turn: role groups also name permissions of apps migrated after this one.
        post_migrate.connect(_sync_role_groups, dispatch_uid="cairn_role_groups")
