"""Settings for the Rivya Console, read from the environment through rivya_dashboard.env.

Every variable read here is listed in the README's table; tests/unit/test_settings.py checks it.
"""

from pathlib import Path

import dj_database_url
from django.utils.crypto import salted_hmac

from rivya_dashboard.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    generated_secret_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("RIVYA_DATA_DIR", str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env_secret("SECRET_KEY") or generated_secret_file(DATA_DIR / "secret_key")
DEBUG = env_bool("RIVYA_DEBUG", False)
ALLOWED_HOSTS = env_list("RIVYA_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("RIVYA_CSRF_TRUSTED_ORIGINS", [])
RIVYA_PUBLIC_URL = env_str("RIVYA_PUBLIC_URL", "").rstrip("/")
# Where `serve` listens, passed to its web and worker processes: the console reaches its own
# sandbox here when RIVYA_PUBLIC_URL is empty (rivya_dashboard/outbound.py), never at a Host
# header a request brought.
RIVYA_LISTEN_URL = env_str("RIVYA_LISTEN_URL", "").rstrip("/")
# Outbound HTTP ignores proxy variables from the environment; this names a proxy explicitly.
RIVYA_OUTBOUND_PROXY = env_str("RIVYA_OUTBOUND_PROXY", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "rivya_dashboard.accounts",
    "rivya_dashboard.console",
    "rivya_dashboard.sandbox",
    "rivya_dashboard.vault",
    "rivya_dashboard.chat",
    "rivya_dashboard.webhooks",
    "rivya_dashboard.workbench",
]

MIDDLEWARE = [
    "rivya_dashboard.request_context.RequestContextMiddleware",
    "rivya_dashboard.metrics.MetricsMiddleware",
    "rivya_dashboard.console.server_timing.ServerTimingMiddleware",
    # Outermost but timing: the 404, CSRF and sign-in redirects it sees are team pages too.
    "rivya_dashboard.cache_control.NoStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "rivya_dashboard.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything that writes a message: a member's language beats Accept-Language.
    "rivya_dashboard.accounts.language.MemberLanguageMiddleware",
    "rivya_dashboard.accounts.middleware.SetupRequiredMiddleware",
    "rivya_dashboard.accounts.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After MessageMiddleware: the sign-out it forces leaves a message for the login page.
    "rivya_dashboard.accounts.middleware.SessionLifetimeMiddleware",
    "rivya_dashboard.accounts.middleware.SecondFactorMiddleware",
    "rivya_dashboard.accounts.member_sessions.SessionTrackingMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "rivya_dashboard.vault.middleware.KeyUnusableMiddleware",
]

ROOT_URLCONF = "rivya_dashboard.urls"
WSGI_APPLICATION = "rivya_dashboard.wsgi.application"

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
                "rivya_dashboard.csp.csp_nonce",
                "rivya_dashboard.accounts.navigation.navigation",
                "rivya_dashboard.webhooks.alerts.failure_banner",
                "rivya_dashboard.console.alerts.low_balance_banner",
            ],
            "builtins": [
                "template_partials.templatetags.partials",
                "rivya_dashboard.console.templatetags.quantities",
                "rivya_dashboard.console.templatetags.api_labels",
            ],
        },
    }
]

# SQLite is the embedded default: WAL lets readers and the one writer work at once,
# IMMEDIATE transactions take the write lock up front so concurrent writers queue on the busy
# timeout instead of failing with "database is locked" on lock upgrade.
SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
DATABASE_URL = env_secret("DATABASE_URL")
if DATABASE_URL:
    # A kept connection that a server restart or the network cut is checked before its first
    # use in a request and replaced, instead of failing that request.
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A server that does not answer fails the request (the 503 page) instead of hanging it;
        # `?connect_timeout=` in DATABASE_URL wins.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "rivya.sqlite3",
            # Kept open per thread: closing the last connection checkpoints the WAL with an
            # fsync and a new one re-reads the schema, 10-30 ms on every request that writes.
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "init_command": SQLITE_INIT,
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("RIVYA_SQLITE_TIMEOUT", 20, minimum=1),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Lock-out (accounts/forms.py): failures per (username, address), and per address alone.
RIVYA_LOGIN_MAX_FAILURES = env_int("RIVYA_LOGIN_MAX_FAILURES", 5, minimum=1)
RIVYA_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int(
    "RIVYA_LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1
)
RIVYA_INVITE_DAYS = env_int("RIVYA_INVITE_DAYS", 7, minimum=1)
# Whether owners and admins need a second factor, until the owner decides on the Security page.
RIVYA_MFA_REQUIRED = env_bool("RIVYA_MFA_REQUIRED", True)
# Sensitive actions ask for the password again when it was last confirmed longer ago than this.
RIVYA_REAUTH_MINUTES = env_int("RIVYA_REAUTH_MINUTES", 10, minimum=1)

# Sessions: absolute lifetime is the cookie age; the idle limit is enforced by
# SessionLifetimeMiddleware, which refreshes its timestamp at most once a minute.
RIVYA_SESSION_IDLE_MINUTES = env_int("RIVYA_SESSION_IDLE_MINUTES", 30, minimum=1)
RIVYA_SESSION_MAX_HOURS = env_int("RIVYA_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = RIVYA_SESSION_MAX_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

SECURE_COOKIES = env_bool("RIVYA_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("RIVYA_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("RIVYA_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
RIVYA_BEHIND_PROXY = env_bool("RIVYA_BEHIND_PROXY", False)
# Proxies in front of the console that append to X-Forwarded-For (accounts/audit.py client_ip).
RIVYA_PROXY_COUNT = env_int("RIVYA_PROXY_COUNT", 1, minimum=1)
if RIVYA_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
# Each name is written in its own language: it is what a member looks for in the switcher.
LANGUAGES = [("en", "English"), ("ur", "اردو")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Django ships no Urdu date and number formats; ours are in rivya_dashboard/formats/ur/.
FORMAT_MODULE_PATH = ["rivya_dashboard.formats"]
# The switcher's cookie carries a visitor's choice to the sign-in page; same flags as the session.
LANGUAGE_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Generations and files (rivya_dashboard/console). Poll delays follow the contract's back-off and
# are divided by RIVYA_POLL_SPEED, so a test against a fast sandbox clock does not wait seconds.
RIVYA_MODELS_REFRESH_MINUTES = env_int("RIVYA_MODELS_REFRESH_MINUTES", 60, minimum=1)
RIVYA_OPENAPI_REFRESH_MINUTES = env_int("RIVYA_OPENAPI_REFRESH_MINUTES", 60, minimum=1)
# The workbench's request inspector: every exchange with Rivya kept, bodies cut to this size,
# pruned by the housekeeping task to the retention and the total size.
RIVYA_INSPECTOR_ENABLED = env_bool("RIVYA_INSPECTOR", True)
RIVYA_INSPECTOR_BODY_KB = env_int("RIVYA_INSPECTOR_BODY_KB", 64, minimum=1)
RIVYA_INSPECTOR_RETENTION_DAYS = env_int("RIVYA_INSPECTOR_RETENTION_DAYS", 30, minimum=1)
RIVYA_INSPECTOR_MAX_MB = env_int("RIVYA_INSPECTOR_MAX_MB", 500, minimum=1)
RIVYA_POLL_SPEED = env_int("RIVYA_POLL_SPEED", 1, minimum=1)
RIVYA_POLL_MAX_MINUTES = env_int("RIVYA_POLL_MAX_MINUTES", 120, minimum=1)
RIVYA_MEDIA_MAX_MB = env_int("RIVYA_MEDIA_MAX_MB", 500, minimum=1)
# Free space the media cache leaves on its disk: on the embedded default the database shares it.
RIVYA_MEDIA_MIN_FREE_MB = env_int("RIVYA_MEDIA_MIN_FREE_MB", 200, minimum=0)
RIVYA_UPLOAD_MAX_MB = env_int("RIVYA_UPLOAD_MAX_MB", 100, minimum=1)
# Credits (rivya_dashboard/console/credits.py): how often the worker reads every key's balance.
RIVYA_BALANCE_REFRESH_MINUTES = env_int("RIVYA_BALANCE_REFRESH_MINUTES", 15, minimum=1)

# Key vault: the keyring that encrypts stored API keys (rivya_dashboard/vault/crypto.py).
# Empty means the console keeps its own keyring file in the data dir.
RIVYA_KEYRING = env_secret("RIVYA_KEYRING")
# What seals the sandbox's webhook signing secrets: the vault's crypto, named rather than imported
# because the sandbox imports no other app (ARCHITECTURE §2).
RIVYA_SANDBOX_SEALER = "rivya_dashboard.vault.crypto"
# Custom base URLs may point at loopback/private addresses only when this is on.
RIVYA_ALLOW_PRIVATE_BASE_URLS = env_bool("RIVYA_ALLOW_PRIVATE_BASE_URLS", False)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# /metrics answers only with this bearer token; unset, it is off (404). `serve` names the
# directory where all of its processes keep their figures for /metrics to add up.
RIVYA_METRICS_TOKEN = env_secret("RIVYA_METRICS_TOKEN", "")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
# Every line carries the request id (and, as JSON, the member id, view and duration).
RIVYA_LOG_FORMAT = env_choice("RIVYA_LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "rivya_dashboard.request_context.ContextFilter"},
        "forbidden_one_line": {"()": "rivya_dashboard.request_context.ForbiddenOneLine"},
        "outage_one_line": {"()": "rivya_dashboard.database_outage.OutageOneLine"},
    },
    "formatters": {
        "text": {
            "()": "rivya_dashboard.request_context.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "rivya_dashboard.request_context.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": RIVYA_LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "loggers": {"django.request": {"filters": ["forbidden_one_line", "outage_one_line"]}},
    "root": {"handlers": ["console"], "level": env_choice("RIVYA_LOG_LEVEL", "INFO", LOG_LEVELS)},
}

# Sandbox: the built-in Rivya API v1 emulator under /sandbox/api/v1/.
RIVYA_SANDBOX = env_bool("RIVYA_SANDBOX", True)
# The Bearer token of the sandbox's control API (sandbox/control_api.py), which only this console
# calls: derived from SECRET_KEY, so every process of one installation agrees on it.
RIVYA_SANDBOX_CONTROL_TOKEN = (
    "rvya_ctl_"
    + salted_hmac(
        "rivya.sandbox.control", "mint-keys", secret=SECRET_KEY, algorithm="sha256"
    ).hexdigest()
)
# Defaults of the sandbox's runtime settings (the control page can change them afterwards).
RIVYA_SANDBOX_CLOCK_SPEED = env_int("RIVYA_SANDBOX_CLOCK_SPEED", 1, minimum=1)
RIVYA_SANDBOX_FAILURE_RATE = env_int("RIVYA_SANDBOX_FAILURE_PERCENT", 0, minimum=0) / 100
RIVYA_SANDBOX_RATE_LIMIT = env_int("RIVYA_SANDBOX_RATE_LIMIT", 600, minimum=1)
RIVYA_SANDBOX_TOKEN_DELAY_MS = env_int("RIVYA_SANDBOX_TOKEN_DELAY_MS", 20, minimum=0)
# Sandbox webhooks: the real API refuses loopback/private targets (§9.2), so local targets are off
# unless asked for; fast retries turn the minute-scale retry schedule into seconds.
RIVYA_SANDBOX_WEBHOOK_ALLOW_LOCAL = env_bool("RIVYA_SANDBOX_WEBHOOK_ALLOW_LOCAL", False)
RIVYA_SANDBOX_WEBHOOK_FAST_RETRIES = env_bool("RIVYA_SANDBOX_WEBHOOK_FAST_RETRIES", False)

# Webhook inboxes (rivya_dashboard/webhooks): the receiver stores bodies up to this size and
# answers 413 above it; forwards and replays may reach loopback only when this is on (and only
# for owners and admins). An endpoint with ALERT_FAILURES failed deliveries within
# ALERT_MINUTES raises a banner for admins.
RIVYA_INBOX_MAX_BODY_KB = env_int("RIVYA_INBOX_MAX_BODY_KB", 256, minimum=1)
# What an inbox keeps and takes (webhooks/inbox_limits.py, webhooks/receiver.py), unless the
# inbox sets its own: at most MAX_REQUESTS requests and MAX_MB stored (oldest removed first),
# each for RETENTION_DAYS; RATE_PER_MINUTE requests a minute (429 above); and the first
# REFUSED_BODY_KB of a refused request's body.
RIVYA_INBOX_MAX_REQUESTS = env_int("RIVYA_INBOX_MAX_REQUESTS", 10000, minimum=1)
RIVYA_INBOX_MAX_MB = env_int("RIVYA_INBOX_MAX_MB", 100, minimum=1)
RIVYA_INBOX_RETENTION_DAYS = env_int("RIVYA_INBOX_RETENTION_DAYS", 30, minimum=1)
RIVYA_INBOX_RATE_PER_MINUTE = env_int("RIVYA_INBOX_RATE_PER_MINUTE", 1200, minimum=1)
RIVYA_INBOX_REFUSED_BODY_KB = env_int("RIVYA_INBOX_REFUSED_BODY_KB", 16, minimum=0)
RIVYA_ALLOW_LOCAL_FORWARD = env_bool("RIVYA_ALLOW_LOCAL_FORWARD", False)
RIVYA_WEBHOOK_ALERT_FAILURES = env_int("RIVYA_WEBHOOK_ALERT_FAILURES", 5, minimum=1)
RIVYA_WEBHOOK_ALERT_MINUTES = env_int("RIVYA_WEBHOOK_ALERT_MINUTES", 15, minimum=1)
