from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Document control"
    default_auto_field = "django.db.models.BigAutoField"
