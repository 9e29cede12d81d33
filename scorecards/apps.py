from django.apps import AppConfig


class ScorecardsConfig(AppConfig):
    name = "scorecards"
    verbose_name = "Maturity and scorecards"
    default_auto_field = "django.db.models.BigAutoField"
