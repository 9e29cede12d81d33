"""Settings for the web benchmarks' gunicorn: production settings plus the bare baseline views (benchmarks/urls.py).

Production never loads this module, so the /bench/ URLs exist only under the benchmarks.
"""

import warnings

from cairn.settings import *  # noqa: F403

# Nothing is collected for the benchmarks (see STORAGES below); whitenoise would warn once per worker.
warnings.filterwarnings("ignore", message="No directory at")

ROOT_URLCONF = "benchmarks.urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "benchmarks" / "templates"]  # noqa: F405
# The pages name their CSS through the static storage; the manifest one would need a collectstatic first, and
# the load generator never fetches the files anyway.
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
