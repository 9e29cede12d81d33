"""Test settings: the production settings module with a test environment, nothing else.

Variables already set in the environment win, so `DATABASE_URL=postgres://… pytest` runs on PostgreSQL.
"""

import os

for name, value in {
    "SECRET_KEY": "test-only-secret-key-not-used-anywhere-else",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "LOG_LEVEL": "WARNING",
    # The API throttles count per user (SQLite reuses ids after a rollback) and per address (every test client
    # is 127.0.0.1) across the whole run: limits no test reaches, over one second so each history stays short.
    "CAIRN_API_THROTTLE_ANON": "10000/second",
    "CAIRN_API_THROTTLE_USER": "10000/second",
}.items():
    os.environ.setdefault(name, value)
os.environ["CELERY_BROKER_URL"] = ""  # unit tests run tasks eagerly; the services suite starts real workers

from cairn.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never outside tests
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
