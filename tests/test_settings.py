import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cairn.lib.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def django_check(**env):
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "cairn.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_names_the_variable_holding_a_bad_boolean(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False)


def test_it_names_the_variable_holding_a_bad_number(monkeypatch):
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "ten")
    with pytest.raises(ImproperlyConfigured, match="CELERY_TASK_TIME_LIMIT='ten' is not a whole number"):
        env_int("CELERY_TASK_TIME_LIMIT", 5)
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "-1")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("CELERY_TASK_TIME_LIMIT", 5, minimum=1)


def test_it_splits_lists_on_commas(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " cairn.example.com, ,localhost ")
    assert env_list("ALLOWED_HOSTS", []) == ["cairn.example.com", "localhost"]


def test_start_up_stops_without_a_secret_key_when_debug_is_off():
    result = django_check(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_start_up_stops_on_an_unusable_database_url():
    result = django_check(DEBUG="true", DATABASE_URL="nosuchdb://somewhere/x")
    assert result.returncode != 0
    assert "DATABASE_URL cannot be used" in result.stderr


def test_start_up_stops_when_the_hard_time_limit_is_not_above_the_soft_one():
    result = django_check(DEBUG="true", CELERY_TASK_SOFT_TIME_LIMIT="60", CELERY_TASK_TIME_LIMIT="60")
    assert result.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT must be greater" in result.stderr


def test_demo_settings_start_with_nothing_configured():
    result = django_check(DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_celery_is_eager_without_a_broker_and_acknowledges_late(settings):
    from cairn.celery import app

    assert app.conf.task_always_eager is True
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert {queue.name for queue in app.conf.task_queues} == {"default", "evidence", "reports"}
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_manage_py_works_from_a_checkout_without_configuration():
    assert django_check().returncode == 0


def test_the_wsgi_application_refuses_to_start_without_a_secret_key():
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    result = subprocess.run(
        [sys.executable, "-c", "import cairn.wsgi"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
