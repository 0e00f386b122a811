"""Lightbox settings: one module, configured by the environment.

With no variables at all Lightbox runs on SQLite, local files under ``var/`` and the
in-memory channel layer, with DEBUG on. ``DATABASE_URL``, ``REDIS_URL`` and the
``LIGHTBOX_STORAGE``/``AWS_*`` variables switch to PostgreSQL, Redis and S3-compatible
object storage. See ``.env.example`` for every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envlist(name: str, default: str = "") -> list[str]:
    return [item for item in os.environ.get(name, default).replace(",", " ").split() if item]


DEBUG = envbool("DEBUG", True)
SECRET_KEY = envstr("SECRET_KEY") or (
    "dev-only-insecure-key-change-me-never-use-in-production" if DEBUG else ""
)
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost 127.0.0.1 [::1] testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

VAR_DIR = Path(envstr("LIGHTBOX_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite, media and staging of a fresh clone

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "rest_framework_api_key",
    "drf_spectacular",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "accounts",
    "dicom",
    "developers",
    "viewer",
    "jobs",
    "analysis",
    "exams",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database ---------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer (Redis when REDIS_URL is set) ----------------------------------
REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "lightbox"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": envstr("CACHE_KEY_PREFIX", "lightbox")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Background tasks (django-tasks with the database backend) --------------------------
TASKS = {
    "default": {
        "BACKEND": envstr("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Storage ----------------------------------------------------------------------------
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

LIGHTBOX_STORAGE = envstr("LIGHTBOX_STORAGE", "filesystem")  # "filesystem" or "s3"
if LIGHTBOX_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": envstr("AWS_STORAGE_BUCKET_NAME", "lightbox"),
            "endpoint_url": envstr("AWS_S3_ENDPOINT_URL") or None,
            "region_name": envstr("AWS_S3_REGION_NAME") or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "allow_overwrite": True},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Lightbox: ingest limits -----------------------------------------------------------
# Staging is always a local folder: uploads are streamed there while hashed, then moved
# to the default storage under final/{sha256}/original.dcm.
LIGHTBOX_STAGING_DIR = Path(envstr("LIGHTBOX_STAGING_DIR", str(VAR_DIR / "staging")))
LIGHTBOX_MAX_FILE_BYTES = envint("LIGHTBOX_MAX_FILE_BYTES", 100 * 1024 * 1024)
# fsync a stored original and its folder entries before the row that records it commits, so
# that a power cut after an upload was acknowledged cannot leave the row with an empty file
# (as Orthanc's SyncStorageArea). Off only on disposable machines.
LIGHTBOX_FSYNC = envbool("LIGHTBOX_FSYNC", True)
LIGHTBOX_MAX_ZIP_MEMBERS = envint("LIGHTBOX_MAX_ZIP_MEMBERS", 10_000)
LIGHTBOX_MAX_ZIP_TOTAL_BYTES = envint("LIGHTBOX_MAX_ZIP_TOTAL_BYTES", 2 * 1024 * 1024 * 1024)
LIGHTBOX_MAX_UPLOAD_BYTES = envint("LIGHTBOX_MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)
LIGHTBOX_MAX_RENDER_PIXELS = envint("LIGHTBOX_MAX_RENDER_PIXELS", 64 * 1024 * 1024)
# HMAC key of keyed anonymisation pseudonyms (use_secure); set a real secret in production.
LIGHTBOX_ANONYMIZATION_KEY = envstr("LIGHTBOX_ANONYMIZATION_KEY") or (
    "dev-only-anonymization-key" if DEBUG else SECRET_KEY + ":anonymization"
)
# Encryption at rest of stored files (off by default): "id1:<base64 32 bytes>,id2:..."
# and the id new files use. See dicom/encryption.py.
LIGHTBOX_ENCRYPTION_KEYS = envstr("LIGHTBOX_ENCRYPTION_KEYS")
LIGHTBOX_ENCRYPTION_KEY_ID = envstr("LIGHTBOX_ENCRYPTION_KEY_ID")
# Real-world test corpus used by the test-suite (tests skip with a reason when absent).
LIGHTBOX_SAMPLES_DIR = Path(
    envstr("LIGHTBOX_SAMPLES_DIR", str(BASE_DIR.parent / "shared" / "dicom-samples"))
)
# Monthly quotas of metered endpoints per developer profile (overrides in the admin).
LIGHTBOX_QUOTAS = {
    "/api/dicom/read/file/": envint("QUOTA_READ_FILE", 1000),
}
# Uploaded files larger than this are spooled to disk by Django, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = envint("DATA_UPLOAD_MAX_NUMBER_FILES", 1000)

# --- Jobs (jobs/): batches, exports, anonymisation run by `manage.py jobs_worker` ------------
# A job whose worker shows no sign of life for this long is enqueued again (jobs/recovery.py).
LIGHTBOX_JOB_STALE_SECONDS = envint("LIGHTBOX_JOB_STALE_SECONDS", 120)
LIGHTBOX_JOB_HEARTBEAT_SECONDS = envint("LIGHTBOX_JOB_HEARTBEAT_SECONDS", 10)
LIGHTBOX_JOB_ITEM_MAX_ATTEMPTS = envint("LIGHTBOX_JOB_ITEM_MAX_ATTEMPTS", 3)
# Tasks enqueued per job: that many workers share a job's items (skip-locked rows).
LIGHTBOX_JOB_PARALLEL_TASKS = envint("LIGHTBOX_JOB_PARALLEL_TASKS", 2)
LIGHTBOX_MAX_BATCH_FILES = envint("LIGHTBOX_MAX_BATCH_FILES", 10_000)
# Exports up to this many images (and frames) stream at once; larger ones become a job.
LIGHTBOX_EXPORT_SYNC_MAX_IMAGES = envint("LIGHTBOX_EXPORT_SYNC_MAX_IMAGES", 20)
LIGHTBOX_EXPORT_SYNC_MAX_FRAMES = envint("LIGHTBOX_EXPORT_SYNC_MAX_FRAMES", 100)
LIGHTBOX_EXPORT_MAX_IMAGES = envint("LIGHTBOX_EXPORT_MAX_IMAGES", 5000)

# --- Auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/viewer/login/"
LOGIN_REDIRECT_URL = "/viewer/"
LOGOUT_REDIRECT_URL = "/viewer/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    # JWT first: its WWW-Authenticate header makes unauthenticated requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "developers.authentication.CachedUserJWTAuthentication",
        "developers.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "developers.throttling.RateLimits",  # anon, user and the view's scope at once
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "dicom.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": None,
    "DEFAULT_THROTTLE_RATES": {
        "anon": envstr("THROTTLE_ANON", "100/hour"),
        "user": envstr("THROTTLE_USER", "10000/hour"),
        "uploads": envstr("THROTTLE_UPLOADS", "3000/hour"),
        "token": envstr("THROTTLE_TOKEN", "20/minute"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Seconds a JWT's user row stays in process memory (developers.authentication).
LIGHTBOX_AUTH_USER_CACHE_SECONDS = envint("LIGHTBOX_AUTH_USER_CACHE_SECONDS", 5)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": envstr("JWT_SIGNING_KEY") or SECRET_KEY,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lightbox API",
    "DESCRIPTION": (
        "Lightbox stores DICOM images, renders them and serves them to clinicians and "
        "software. Authenticate with a session, `Authorization: Bearer <JWT>` from "
        "`POST /api/token/`, or `Authorization: ApiKey <key>`."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Security (production values when DEBUG is off) ----------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: ids and UIDs only, never patient data ----------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": envstr("LOG_FORMAT", "plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "pydicom": {"level": "ERROR"},
        "pynetdicom": {"level": envstr("PYNETDICOM_LOG_LEVEL", "WARNING")},
    },
}

# --- DICOM networking: the SCP of `manage.py dicom_scp` (dicom/dimse) ---------------------
# DICOM_SCP_ALLOWED maps calling AE titles to the user they act as:
# "MODALITY1=owner@example.com,*=archive@example.com". Without a "*" entry, other AE
# titles are rejected; when empty, every AE is accepted and stores without an owner
# (visible to staff only).
DICOM_SCP_AE_TITLE = envstr("DICOM_SCP_AE_TITLE", "LIGHTBOX")
DICOM_SCP_HOST = envstr("DICOM_SCP_HOST", "0.0.0.0")  # noqa: S104 - devices connect over the network
DICOM_SCP_PORT = envint("DICOM_SCP_PORT", 11112)
DICOM_SCP_ALLOWED = envstr("DICOM_SCP_ALLOWED", "")
DICOM_SCP_MAX_ASSOCIATIONS = envint("DICOM_SCP_MAX_ASSOCIATIONS", 10)

# --- PostgreSQL connections ----------------------------------------------------------------
# Requests run in a fixed pool of threads (config/asgi_handler.py), so persistent
# connections (DB_CONN_MAX_AGE > 0, one per thread) or a psycopg pool (DB_POOL=true, shared
# by the threads) both remove the per-request connect.
# DB_SERVER_SIDE_BINDING=true lets psycopg bind parameters on the server and prepare the
# statements a connection repeats (QIDO, ingest): no planning on each execution.
if envbool("DB_SERVER_SIDE_BINDING", False) and DATABASES["default"]["ENGINE"].endswith(
    "postgresql"
):
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    # Prepare from the second execution (psycopg's default waits for the fifth): with a
    # connection per request thread most statements would otherwise never be prepared.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = envint("DB_PREPARE_THRESHOLD", 1)
if envbool("DB_POOL", False) and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["ENGINE"] = "config.postgresql"  # the pool: most recent first
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("DB_POOL_MIN", 2),
        "max_size": envint("DB_POOL_MAX", 20),
    }
