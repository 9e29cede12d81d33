"""The Celery application: configured from Django settings (CELERY_*), tasks discovered in each app."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cairn.settings")

app = Celery("cairn")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Declared explicitly so a worker started with `-Q evidence` or `-Q reports` finds its queue.
app.conf.task_queues = [Queue(name) for name in ("default", "evidence", "reports")]
app.autodiscover_tasks()
