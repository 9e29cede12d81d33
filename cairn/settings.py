"""Cairn settings: everything a deployment changes comes from the environment.

`make run` needs none of it (SQLite, eager Celery, demo mode). Production sets at least SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL. A value that cannot be used stops start-up with a message
naming the variable.
"""

import ipaddress
import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from cairn.lib.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Demo mode loads the example program and may create demo users with printed passwords.
DEMO_MODE = env_bool("CAIRN_DEMO", False)

SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "cairn-insecure-development-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "import_export",
    "cairn",
    "roadmap",
    "metrics",
    "governance",
    # After roadmap: its admin extends the program admin with the strategy import and export.
    "strategy",
    "dashboard",
    "scorecards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cairn.middleware.SecurityHeadersMiddleware",  # before WhiteNoise, so static files get the headers too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "cairn.urls"
WSGI_APPLICATION = "cairn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_database = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL") or _default_database,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be used: {exc}") from None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded evidence files and generated scorecards. Several web or worker machines need this on shared storage.
MEDIA_ROOT = env_str("CAIRN_MEDIA_ROOT", str(BASE_DIR / "media"))
MEDIA_URL = "media/"  # never served directly: downloads go through views that check access
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Manifest storage serves unhashed names while DEBUG is on, so collectstatic behaves the same either way.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Everyone signs in here (executives have no admin access); the admin keeps its own login page for staff.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:programs"
LOGOUT_REDIRECT_URL = "login"

# --- Django REST framework -------------------------------------------------------------------------------


def _env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as 1000/minute (the period is second, minute, hour or day)."""
    value = env_str(name, default) or default
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 1000/minute or 50/second.")
    return value


REST_FRAMEWORK = {
    # Token first: a caller without valid credentials (a revoked token, say) gets 401 and WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cairn.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "cairn.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "cairn.api.exception_handler",
    # The API speaks JSON only; `?format=` belongs to the endpoints that export files (csv, xlsx, …).
    "URL_FORMAT_OVERRIDE": None,
    # Generous per-caller limits (counted in the cache, see CACHES) that stop a runaway script, not a person.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _env_rate("CAIRN_API_THROTTLE_ANON", "100/minute"),
        "user": _env_rate("CAIRN_API_THROTTLE_USER", "1000/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cairn API",
    "DESCRIPTION": "Programs, phases, sections and checklist items, scoped to the caller's memberships.",
    "VERSION": "1",
    # The schema describes every endpoint; only signed-in users may read it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Programs and items both have a "status"; name their choice sets so clients get stable enum names.
    "ENUM_NAME_OVERRIDES": {
        "ProgramStatusEnum": "roadmap.models.Program.Status",
        "ItemStatusEnum": "roadmap.models.ChecklistItem.Status",
        "WaiverTypeEnum": "governance.models.Waiver.Type",
        "EvidenceSourceKindEnum": "metrics.models.EvidenceSource.Kind",
        "EvidenceKindEnum": "metrics.models.Evidence.Kind",
        "FreshnessStateEnum": "metrics.selectors.FRESHNESS_STATES",
    },
}

# --- Celery ----------------------------------------------------------------------------------------------
# Without a broker every task runs inline (eager), which is what `make run` and the unit tests use.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or ""
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every task is routed here by name, so one table shows which workers run what.
CELERY_TASK_ROUTES = {
    "roadmap.tasks.*": {"queue": "default"},
    "scorecards.tasks.snapshot*": {"queue": "default"},
    "scorecards.tasks.scorecard*": {"queue": "reports"},
    "governance.tasks.*": {"queue": "default"},
    "metrics.tasks.*": {"queue": "evidence"},
    "cairn.tasks.*": {"queue": "default"},
}
# Executive scorecards for the month before go out on this day of each month (1–28) at this hour.
CAIRN_SCORECARD_DAY = env_int("CAIRN_SCORECARD_DAY", 1, minimum=1)
CAIRN_SCORECARD_HOUR = env_int("CAIRN_SCORECARD_HOUR", 7, minimum=0)
if CAIRN_SCORECARD_DAY > 28 or CAIRN_SCORECARD_HOUR > 23:
    raise ImproperlyConfigured(
        "CAIRN_SCORECARD_DAY must be 1–28 (every month has it) and CAIRN_SCORECARD_HOUR 0–23."
    )
# Beat's database scheduler installs these at start; times are in TIME_ZONE.
CELERY_BEAT_SCHEDULE = {
    "document-control-daily": {
        "task": "governance.tasks.document_control_daily",
        "schedule": crontab(hour=env_int("CAIRN_REMINDER_HOUR", 6, minimum=0), minute=0),
    },
    # Each source has its own interval (edited on the source); this tick runs the ones that are due.
    "evidence-collection": {
        "task": "metrics.tasks.collect_due",
        "schedule": env_int("CAIRN_COLLECTOR_TICK_SECONDS", 60, minimum=5),
    },
    "maturity-snapshots-daily": {
        "task": "scorecards.tasks.snapshots_daily",
        "schedule": crontab(hour=env_int("CAIRN_SNAPSHOT_HOUR", 2, minimum=0), minute=15),
    },
    "scorecards-monthly": {
        "task": "scorecards.tasks.scorecards_monthly",
        "schedule": crontab(day_of_month=CAIRN_SCORECARD_DAY, hour=CAIRN_SCORECARD_HOUR, minute=30),
    },
    # Sends the tasks the broker could not take when they were asked for (cairn/outbox.py). A tick that
    # waited longer than the interval is dropped: the next one does the same work.
    "outbox-flush": {"task": "cairn.tasks.outbox_flush", "schedule": 30, "options": {"expires": 25}},
}
# At-least-once delivery: a task is acknowledged after it ran, and re-queued if its worker dies mid-way.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT.")
# Checklist imports (one transaction each) may run this long; a run still "running" after it was claimed this
# long ago lost its worker and is claimed again (the hard limit has killed any attempt still going, in prefork).
CAIRN_CHECKLIST_IMPORT_TIME_LIMIT = env_int("CAIRN_CHECKLIST_IMPORT_TIME_LIMIT", 960, minimum=2)
# A scheduled collection run still "running" this long past its own worst case lost its worker: a later tick
# takes it over.
CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS = env_int("CAIRN_COLLECTOR_ABANDONED_AFTER_SECONDS", 120, minimum=1)
# Redis redelivers a task not acknowledged within this many seconds. It must outlast the longest task (longer
# than CAIRN_CHECKLIST_IMPORT_TIME_LIMIT), or a task still running is delivered to a second worker; the price is
# that a task whose worker was killed waits this long before another worker runs it. RabbitMQ redelivers as soon
# as the dead worker's connection closes and ignores this.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "CELERY_BROKER_VISIBILITY_TIMEOUT",
        max(3600, 2 * CELERY_TASK_TIME_LIMIT, 2 * CAIRN_CHECKLIST_IMPORT_TIME_LIMIT),
        minimum=1,
    )
}
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 3, minimum=1)
# Longest wait for one broker read or write once connected (a broker that stopped answering).
CELERY_BROKER_SOCKET_TIMEOUT = env_int("CELERY_BROKER_SOCKET_TIMEOUT", 5, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS |= {
    # A request that enqueues must not hang on a broker that is down: one connection attempt (kombu would
    # otherwise retry for as long as the connect timeout allows, or forever), then the outbox keeps the task
    # (cairn/outbox.py). Workers are unaffected: they reconnect under broker_connection_retry.
    "max_retries": 0,
    # Redis ignores the connect timeout above; without these a black-holed broker (packets dropped, no
    # refusal) holds a publish for minutes. AMQP bounds its connect and handshake by the connect timeout and
    # its writes by write_timeout; a publish waits for no reply.
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
    "write_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Cairn -----------------------------------------------------------------------------------------------
# Selections larger than this are processed by a Celery task instead of inside the request.
CAIRN_BULK_INLINE_LIMIT = env_int("CAIRN_BULK_INLINE_LIMIT", 200, minimum=1)
# Strategy documents larger than this are refused before they are parsed (bytes; default 5 MB).
CAIRN_STRATEGY_MAX_BYTES = env_int("CAIRN_STRATEGY_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# Evidence without its own validity (a manual attestation) counts as fresh for this many days, then fades
# over the grace period (DESIGN §5).
CAIRN_EVIDENCE_VALID_DAYS = env_int("CAIRN_EVIDENCE_VALID_DAYS", 365, minimum=1)
CAIRN_EVIDENCE_GRACE_DAYS = env_int("CAIRN_EVIDENCE_GRACE_DAYS", 30, minimum=0)
# Document control: reminders before a review is due, when a review escalates to the approver, when an
# acknowledgement is overdue, and how far ahead an expiring waiver is announced (all in days).
CAIRN_REVIEW_DUE_SOON_DAYS = env_int("CAIRN_REVIEW_DUE_SOON_DAYS", 14, minimum=0)
CAIRN_REVIEW_ESCALATION_DAYS = env_int("CAIRN_REVIEW_ESCALATION_DAYS", 14, minimum=0)
CAIRN_ACKNOWLEDGEMENT_DAYS = env_int("CAIRN_ACKNOWLEDGEMENT_DAYS", 14, minimum=0)
CAIRN_WAIVER_EXPIRY_NOTICE_DAYS = env_int("CAIRN_WAIVER_EXPIRY_NOTICE_DAYS", 14, minimum=0)
# The dashboard scores a program once for all its readers and reuses the figures this many seconds while its
# items, measurements, evidence and snapshots are unchanged (0: score on every request).
CAIRN_DASHBOARD_CACHE_SECONDS = env_int("CAIRN_DASHBOARD_CACHE_SECONDS", 30, minimum=0)
# Executive scorecards: how many top risks page 2 lists (the appendix has every requirement).
CAIRN_SCORECARD_TOP_RISKS = env_int("CAIRN_SCORECARD_TOP_RISKS", 12, minimum=1)
# Checklist spreadsheets: largest file accepted (bytes), and above how many rows an import runs in Celery.
CAIRN_CHECKLIST_MAX_BYTES = env_int("CAIRN_CHECKLIST_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
# …and most data rows, and most bytes an XLSX may unpack to (its parts together): zip bombs stop here.
CAIRN_CHECKLIST_MAX_ROWS = env_int("CAIRN_CHECKLIST_MAX_ROWS", 100_000, minimum=1)
CAIRN_CHECKLIST_MAX_UNZIPPED_BYTES = env_int(
    "CAIRN_CHECKLIST_MAX_UNZIPPED_BYTES", 100 * 1024 * 1024, minimum=1024
)
CAIRN_CHECKLIST_INLINE_ROWS = env_int("CAIRN_CHECKLIST_INLINE_ROWS", 2000, minimum=1)
# Evidence collectors. Outbound HTTP refuses private, loopback and link-local targets unless listed here
# (CIDRs or host names, comma-separated); responses are capped and redirects re-checked (cairn/lib/http.py).
CAIRN_COLLECTOR_ALLOWED_NETWORKS = env_list(
    "CAIRN_COLLECTOR_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"] if DEMO_MODE else []
)
for _entry in CAIRN_COLLECTOR_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", _entry):
            raise ImproperlyConfigured(
                f"CAIRN_COLLECTOR_ALLOWED_NETWORKS: {_entry!r} is neither a network (CIDR) nor a host name."
            ) from None
CAIRN_COLLECTOR_MAX_BYTES = env_int("CAIRN_COLLECTOR_MAX_BYTES", 1024 * 1024, minimum=1024)
CAIRN_COLLECTOR_MAX_REDIRECTS = env_int("CAIRN_COLLECTOR_MAX_REDIRECTS", 3, minimum=0)
# Sources collected at once in one round (threads), and attempts per run on transient errors.
CAIRN_COLLECTOR_CONCURRENCY = env_int("CAIRN_COLLECTOR_CONCURRENCY", 50, minimum=1)
CAIRN_COLLECTOR_MAX_ATTEMPTS = env_int("CAIRN_COLLECTOR_MAX_ATTEMPTS", 3, minimum=1)
# Backoff before attempt n+1: a random time between half and all of base·2^(n−1) ms (jitter spreads retries).
CAIRN_COLLECTOR_BACKOFF_MS = env_int("CAIRN_COLLECTOR_BACKOFF_MS", 1000, minimum=0)
# Evidence files attached to checklist items (bytes; default 20 MB).
CAIRN_EVIDENCE_MAX_FILE_BYTES = env_int("CAIRN_EVIDENCE_MAX_FILE_BYTES", 20 * 1024 * 1024, minimum=1024)
# Import and export are rights of their own (roadmap.import_checklistitem / export_checklistitem).
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
# XLSX cannot hold control characters: export them as U+FFFD instead of failing the whole export.
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
# Uploads are parsed in memory; let Django accept a whole strategy document in one request.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, CAIRN_STRATEGY_MAX_BYTES, CAIRN_CHECKLIST_MAX_BYTES) + 65_536
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- E-mail ----------------------------------------------------------------------------------------------
# Reminders and scorecards go out by e-mail; without EMAIL_HOST they are printed (console), as in the demo.
EMAIL_HOST = env_str("EMAIL_HOST", "") or ""
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# A hung mail server must not hold a reminder's transaction until the task's time limit.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cairn@localhost") or "cairn@localhost"

# --- Security --------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Sent on every response by cairn.middleware.SecurityHeadersMiddleware: Cairn uses none of these features.
CAIRN_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)
# Content-Security-Policy by path prefix, first match wins. The dashboard and sign-in pages use no JavaScript,
# one stylesheet and inline SVG charts drawn with presentation attributes, so everything else is refused.
_CSP_STRICT = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
CAIRN_CONTENT_SECURITY_POLICIES = {
    # Django's admin runs script files only. Its templates and those of import-export, simple-history and
    # Cairn's admin overrides carry style attributes; import-export's export page has one inline handler,
    # allowed by its hash alone.
    "/admin/": (
        "default-src 'self'; script-src 'self' 'unsafe-hashes' "
        "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    ),
    # Swagger UI: its script is a file (SpectacularSwaggerSplitView); its page has an inline <style> block and
    # the UI sets style attributes and data: images; it fetches the schema from this site.
    "/api/docs/": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "": _CSP_STRICT,
}

# --- Cache and sign-in throttling --------------------------------------------------------------------------
# Login and API throttles count in this cache. With several web processes (gunicorn workers, several
# machines) set CAIRN_CACHE_URL to a Redis server: each process has its own local memory cache, so without
# it every process counts separately and the limits multiply.
CAIRN_CACHE_URL = env_str("CAIRN_CACHE_URL", "") or ""
if CAIRN_CACHE_URL:
    if not CAIRN_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            "CAIRN_CACHE_URL must be a Redis URL (redis://host:6379/1, rediss://… or unix://…)."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CAIRN_CACHE_URL,
            "KEY_PREFIX": "cairn",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cairn"}}
# Sign-in (both login pages and POST /api/v1/auth/token/) is refused for a while after this many failed
# attempts for one username, or from one address, within the window (cairn/auth.py).
CAIRN_LOGIN_FAILURES_PER_USERNAME = env_int("CAIRN_LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
CAIRN_LOGIN_FAILURES_PER_ADDRESS = env_int("CAIRN_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
CAIRN_LOGIN_WINDOW_MINUTES = env_int("CAIRN_LOGIN_WINDOW_MINUTES", 15, minimum=1)
# Reverse proxies in front of Cairn that append the client's address to X-Forwarded-For (the production
# settings expect one, as SECURE_PROXY_SSL_HEADER does). Too few and every client shares the proxy's
# address; too many and a client can pick its own address by sending the header.
CAIRN_TRUSTED_PROXIES = env_int("CAIRN_TRUSTED_PROXIES", 0 if DEBUG else 1, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
