from django.apps import AppConfig


class StrategyConfig(AppConfig):
    """Markdown strategy documents in and out: the one workflow that spans roadmap, metrics and governance."""

    name = "strategy"
    verbose_name = "Strategy documents"
    default_auto_field = "django.db.models.BigAutoField"
