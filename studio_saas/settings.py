"""One settings module; every deployment difference comes from the environment (django-environ).

Embedded default (no variables): SQLite, the django-q2 ORM broker, a private local media folder, DEBUG on.
Production: set DJANGO_PRODUCTION=1 plus DATABASE_URL, REDIS_URL, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
and optionally S3 storage variables. See README.md "Production".
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.bool("DJANGO_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)

if PRODUCTION:
    # A real secret key is required in production: no default.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-dev-key-only-for-the-embedded-demo-setup")

# The platform's own domain: studios get <slug>.<PLATFORM_DOMAIN>; "/s/<slug>/" always works too.
PLATFORM_DOMAIN = env.str("PLATFORM_DOMAIN", default="localhost")
# Hosts that are the platform itself (never looked up as a studio's custom domain).
PLATFORM_HOSTS = env.list("PLATFORM_HOSTS", default=[PLATFORM_DOMAIN, "localhost", "127.0.0.1", "[::1]", "testserver"])
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=[] if PRODUCTION else ["localhost", "127.0.0.1", ".localhost", "testserver", "[::1]"],
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "tenants",  # first: its `migrate` command wraps Django's (owner role, row-level security)
    # django.contrib.admin with the studio-scoped site (tenants/admin_scoping.py): /admin/ for platform
    # superusers, admin/ inside each studio for its members.
    "tenants.admin_scoping.StudioAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally (no CDN)
    "django_q",
    "axes",
    "django_prometheus",
    "jobs",
    "generation",
    "templates_app",
    "clients",
    "galleries",
    "billing",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer (django-csp; CONTENT_SECURITY_POLICY below).
    "studio_saas.csp.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "studio_saas.logging.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of the studio's own pages: the staff member's choice (cookie), else the browser's; client pages
    # override it with the client's language (tenants/i18n.py client_facing).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in person's saved language (User.language) wins over the cookie and the browser's.
    "tenants.i18n.StaffLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Resolves the studio (custom domain, subdomain, /s/<slug>/) and holds the tenant context for the request.
    "tenants.middleware.TenantMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "studio_saas.urls"
# URLs served inside a studio (after tenant resolution); the middleware switches request.urlconf to it.
STUDIO_URLCONF = "studio_saas.urls_studio"

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
                "tenants.context_processors.studio",
                "billing.context_processors.currency",
            ],
        },
    },
]

WSGI_APPLICATION = "studio_saas.wsgi.application"
ASGI_APPLICATION = "studio_saas.asgi.application"

# --- Database -------------------------------------------------------------------------------------------------
# DATABASE_URL: what the application connects with. In production this is a role that is neither superuser nor
# BYPASSRLS (create it with `manage.py create_app_role`), so PostgreSQL row-level security applies to it.
# DATABASE_OWNER_URL: the owner role that `manage.py migrate` uses (tables, policies, grants). Defaults to
# DATABASE_URL for the embedded demo.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
# An empty DATABASE_URL (as `make test` passes when no PostgreSQL answers) means the SQLite default too.
DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend plus the tenant context carried into every transaction (row-level security).
    DATABASES["default"]["ENGINE"] = "tenants.db"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded default serves a web server, a worker and a gpu worker at once (three processes writing):
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock when a transaction begins
    # (a deferred one that reads, then writes, fails at once with "database is locked" when another process
    # wrote meanwhile: no waiting helps it); the busy timeout makes a writer wait its turn instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("SQLITE_BUSY_TIMEOUT_SECONDS", default=30.0),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")
# The role name the tests (and create_app_role) use for the application.
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="studio_app")
# Persistent connections on PostgreSQL (a new connection costs a page several milliseconds of server time, more
# than most of its queries): each process (web worker thread, task worker) keeps its connection for
# DATABASE_CONN_MAX_AGE seconds. Safe with row-level security: the tenant is set with SET LOCAL in each
# transaction and ends with it (tenants/rls.py; tests/tenants/test_persistent_connections.py), never on the
# connection. Size PostgreSQL's max_connections for every process and thread. 0: a connection per request.
# SQLite (the embedded default) opens a file, not a connection to a server: 0 there.
DATABASES["default"].setdefault(
    "CONN_MAX_AGE",
    env.int("DATABASE_CONN_MAX_AGE", default=60 if DATABASES["default"]["ENGINE"] == "tenants.db" else 0),
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker -----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# `workers`: what the processes of a site tell each other (django-q2's cluster statistics, the workers' beacons
# in jobs/workers.py): Redis with REDIS_URL, else a file cache that the local processes share.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
        "workers": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "workers": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache" / "workers"),
        },
    }

# django-q2: the default cluster does CPU work (derivatives, email, cleanup); the `gpu` cluster runs one worker
# per GPU (start it with Q_CLUSTER_NAME=gpu). `retry` is longer than `timeout`, attempts are bounded.
JOB_TIMEOUT_SECONDS = env.int("JOB_TIMEOUT_SECONDS", default=15 * 60)
GPU_JOB_TIMEOUT_SECONDS = env.int("GPU_JOB_TIMEOUT_SECONDS", default=2 * 60 * 60)
# The site's name on a shared broker: the signing salt of queued tasks and the name of EVERY queue the site uses
# (the default queue is the prefix itself, the gpu queue `<prefix>-gpu`). Give each site (and each test run with a
# real worker) its own, so none takes another's tasks, the gpu ones included.
Q_CLUSTER_PREFIX = env.str("Q_CLUSTER_PREFIX", default="default")
#: The broker queue of each job cluster (jobs.services.queue_name, the metrics' queue depth).
Q_QUEUES = {"default": Q_CLUSTER_PREFIX, "gpu": f"{Q_CLUSTER_PREFIX}-gpu"}
# A gpu worker is started with Q_CLUSTER_NAME=gpu (the documented command, runall): django-q2 reads the variable
# itself to pick the cluster, so here it becomes this site's gpu queue.
if os.environ.get("Q_CLUSTER_NAME") == "gpu":
    os.environ["Q_CLUSTER_NAME"] = Q_QUEUES["gpu"]
Q_CLUSTER = {
    "name": Q_CLUSTER_PREFIX,
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": JOB_TIMEOUT_SECONDS,
    "retry": JOB_TIMEOUT_SECONDS + 5 * 60,
    "max_attempts": 2,
    "queue_limit": 50,
    "bulk": 1,
    "catch_up": False,
    "save_limit": 500,
    "label": "Task queue",
    "cache": "workers",
    "ALT_CLUSTERS": {
        Q_QUEUES["gpu"]: {
            "workers": 1,
            "timeout": GPU_JOB_TIMEOUT_SECONDS,
            "retry": GPU_JOB_TIMEOUT_SECONDS + 10 * 60,
            "max_attempts": 2,
            "queue_limit": 1,
            "recycle": 50,
            "scheduler": False,
        },
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

JOB_HEARTBEAT_STALE_SECONDS = env.int("JOB_HEARTBEAT_STALE_SECONDS", default=5 * 60)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
# A job queued for longer than this whose task the broker no longer holds (lost with a killed worker's prefetch
# queue, a dropped message) gets its task sent again by the sweeper (jobs/broker.py).
JOB_QUEUED_STALE_SECONDS = env.int("JOB_QUEUED_STALE_SECONDS", default=5 * 60)
# Model affinity (jobs/affinity.py): a gpu worker without a render's base model hands the job to an idle worker
# that has it loaded, for at most this long after the first hand-over (0: never; every worker takes what it gets).
JOB_AFFINITY_WAIT_SECONDS = env.float("JOB_AFFINITY_WAIT_SECONDS", default=5.0)

# --- Auth -----------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
INVITATION_MAX_AGE_SECONDS = env.int("INVITATION_MAX_AGE_SECONDS", default=7 * 24 * 3600)
# Self-serve sign-up (tenants/signup.py): open or closed, the confirmation link's lifetime, the GPU credits of the
# trial (granted once, on confirmation), how often one address and one email may ask ("count/period"), and
# addresses no studio may take beyond the built-in ones (comma-separated).
SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=True)
# Client messages (clients/messages.py): a shared gallery closing with favourites not bought reminds its client
# this many days before (0: never).
GALLERY_FAVOURITES_REMINDER_DAYS = env.int("GALLERY_FAVOURITES_REMINDER_DAYS", default=2)
SIGNUP_MAX_AGE_SECONDS = env.int("SIGNUP_MAX_AGE_SECONDS", default=48 * 3600)
SIGNUP_TRIAL_CREDITS = env.int("SIGNUP_TRIAL_CREDITS", default=100)
SIGNUP_ADDRESS_RATE = env.str("SIGNUP_ADDRESS_RATE", default="5/1h")
SIGNUP_EMAIL_RATE = env.str("SIGNUP_EMAIL_RATE", default="3/1d")
SIGNUP_RESERVED_SLUGS = env.list("SIGNUP_RESERVED_SLUGS", default=[])
# Where the platform answers, for links in emails sent outside a request (a request uses its own host).
PLATFORM_BASE_URL = env.str("PLATFORM_BASE_URL", default="http://localhost:8000")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 24 * 3600)

# django-axes: lock an (email, IP) pair out after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

# --- API ------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsStudioMember"],
    "DEFAULT_SCHEMA_CLASS": "studio_saas.api_schema.StudioAutoSchema",  # the error answers, nullable fields
    "EXCEPTION_HANDLER": "studio_saas.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Studio SaaS API",
    "DESCRIPTION": (
        "Per-studio API. Authenticate with an API key (`Authorization: Api-Key <key>`) created by a studio "
        "owner or manager, or with the browser session. Address a studio by its domain, subdomain or the "
        "`/s/<slug>/` prefix."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema documents the API every studio serves; "Try it out" in the docs goes to one studio by its slug.
    "SERVERS": [
        {
            "url": "/s/{studio}",
            "description": "A studio, by the /s/<slug>/ prefix (its subdomain or custom domain works too)",
            "variables": {"studio": {"default": "demo", "description": "The studio's slug"}},
        }
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Several models have a `status` field with their own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "ClientStatusEnum": "clients.models.Client.Status",
        "PhotoSetStatusEnum": "clients.models.PhotoSet.Status",
        "PhotoStatusEnum": "clients.models.Photo.Status",
        "TemplateStatusEnum": "templates_app.models.Template.Status",
        "OrderStatusEnum": "billing.models.Order.Status",
        "DigitalDoubleStatusEnum": "generation.models.DigitalDouble.Status",
        "WebhookDeliveryStatusEnum": "billing.models.WebhookDelivery.Status",
        "WebhookEventEnum": "billing.models.WebhookEvent",
        "CouponAppliesToEnum": "billing.models.Coupon.AppliesTo",
        "GallerySaleAppliesToEnum": "billing.models.GallerySale.AppliesTo",
        "PrintFulfilmentStatusEnum": "billing.models.PrintFulfilment.Status",
    },
}

# --- Media and static -----------------------------------------------------------------------------------------
# Media is private: never served at a public URL. Local folder by default, S3-compatible by environment.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "private-media")))
# How long a signed media link (tenants/media.py) works. Files are streamed by the app, never redirected to S3.
MEDIA_LINK_MAX_AGE_SECONDS = env.int("MEDIA_LINK_MAX_AGE_SECONDS", default=600)
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME = env.str("S3_BUCKET", default="")
if AWS_STORAGE_BUCKET_NAME:
    private_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("S3_ENDPOINT_URL", default=None),
            "region_name": env.str("S3_REGION", default=None),
            "access_key": env.str("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default=None),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env.int("MEDIA_LINK_MAX_AGE_SECONDS", default=600),
            "file_overwrite": False,
        },
    }
else:
    private_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    }
STORAGES = {
    "default": private_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

# --- Client intake (clients/) ---------------------------------------------------------------------------------
# Thresholds and their justification: docs/intake.md.
INTAKE_MAX_UPLOAD_BYTES = env.int("INTAKE_MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
INTAKE_MAX_PIXELS = env.int("INTAKE_MAX_PIXELS", default=50_000_000)
INTAKE_MIN_FACE_PX = env.int("INTAKE_MIN_FACE_PX", default=160)
INTAKE_MIN_SHARPNESS = env.float("INTAKE_MIN_SHARPNESS", default=20.0)
INTAKE_IDENTITY_MAX_DISTANCE = env.float("INTAKE_IDENTITY_MAX_DISTANCE", default=0.6)
INTAKE_NEAR_DUPLICATE_DISTANCE = env.int("INTAKE_NEAR_DUPLICATE_DISTANCE", default=6)
INTAKE_MIN_PHOTOS = env.int("INTAKE_MIN_PHOTOS", default=10)
INTAKE_RECOMMENDED_PHOTOS = env.int("INTAKE_RECOMMENDED_PHOTOS", default=20)
INTAKE_RETENTION_DAYS = env.int("INTAKE_RETENTION_DAYS", default=7)
INTAKE_UPLOAD_LINK_DAYS = env.int("INTAKE_UPLOAD_LINK_DAYS", default=7)
# How many files one self-upload link takes in all (a leaked link can't be used to fill the studio's storage).
INTAKE_UPLOAD_LINK_MAX_PHOTOS = env.int("INTAKE_UPLOAD_LINK_MAX_PHOTOS", default=60)

# --- Engine (engine, digital doubles, portraits) ---------------------------------------------------
# Details and the reasons behind the defaults: docs/engine.md.
# Where base-model weights live; the tiny demo model is built here on first use.
ENGINE_MODELS_DIR = Path(env.str("ENGINE_MODELS_DIR", default=str(DATA_DIR / "models")))
# Working folders of training jobs (checkpoints: a killed job resumes from them); removed when a double is done.
ENGINE_WORK_DIR = Path(env.str("ENGINE_WORK_DIR", default=str(DATA_DIR / "engine-work")))
# Base models besides the tiny demo model, as a JSON list of
# {"name", "family": "sd15"|"sdxl", "source": local folder or hub id, "resolution"?, "licence", "commercial_use",
#  "label"}.
ENGINE_BASE_MODELS = env.json("ENGINE_BASE_MODELS", default=[])
# Which models studios may use (comma list of names); empty: every model of the registry.
ENGINE_ENABLED_MODELS = env.list("ENGINE_ENABLED_MODELS", default=[])
ENGINE_DEFAULT_MODEL = env.str("ENGINE_DEFAULT_MODEL", default="tiny-sd15")
# Training steps of a double; 0: the engine's default, min(200 x photos, 800).
ENGINE_TRAIN_STEPS = env.int("ENGINE_TRAIN_STEPS", default=0)
# The tiny demo model's sizes, made for a CPU (its images are noise): training steps of a double (about a minute
# on 2 cores) and the most denoising steps of a render (templates ask 30; a run of two renders in seconds).
ENGINE_DEMO_TRAIN_STEPS = env.int("ENGINE_DEMO_TRAIN_STEPS", default=300)
ENGINE_DEMO_RENDER_STEPS = env.int("ENGINE_DEMO_RENDER_STEPS", default=10)
# "cuda" or "cpu" to force a device; empty: automatic (CUDA with bf16/fp16 when present, else CPU fp32).
ENGINE_DEVICE = env.str("ENGINE_DEVICE", default="")
# ControlNets the operator configured, as JSON {"pose": path or hub id, "canny": path or hub id}.
ENGINE_CONTROLNETS = env.json("ENGINE_CONTROLNETS", default={})
# Dedicated inpainting UNets (9 input channels) per family for template photos: {"sd15": "/models/sd15-inpainting"};
# without one, template photos inpaint with the base model's own UNet (docs/engine.md, "Template photos").
ENGINE_INPAINT_UNETS = env.json("ENGINE_INPAINT_UNETS", default={})
# A super-resolution model file (ESRGAN family, loaded by spandrel) for print-size output; empty: Lanczos.
ENGINE_UPSCALER_MODEL = env.str("ENGINE_UPSCALER_MODEL", default="")
# The demo model's images are noise: its print-size output is capped at this long side (keeps the CPU demo quick).
ENGINE_DEMO_MAX_LONG_SIDE = env.int("ENGINE_DEMO_MAX_LONG_SIDE", default=512)
# Test renders from a double's page: at most this many images per run.
ENGINE_MAX_IMAGES_PER_RENDER = env.int("ENGINE_MAX_IMAGES_PER_RENDER", default=8)
# Instant portraits (generation/instant.py, docs/engine.md "Instant portraits"): the training-free identity adapter
# they render with, as JSON {"key": one of engine.identity_adapters.KNOWN, "source": folder or hub id,
# "weight_name": the weight file there, "image_encoder": folder or hub id, "declared_licence"?}; "demo": a tiny
# random adapter built next to the tiny demo model (its images are noise; only with that model); empty: instant
# portraits are unavailable (the photo set page says what to configure). The embedded default is "demo".
ENGINE_INSTANT_ADAPTER = env.str("ENGINE_INSTANT_ADAPTER", default="" if PRODUCTION else "demo")
# Their prompt ({subject} is "a person": there is no trigger token before training), negative prompt, denoising
# steps (the demo model takes at most ENGINE_DEMO_RENDER_STEPS) and the adapter's scale (0-1.5).
ENGINE_INSTANT_PROMPT = env.str(
    "ENGINE_INSTANT_PROMPT", default="studio portrait photo of {subject}, soft light, neutral background, 85mm"
)
ENGINE_INSTANT_NEGATIVE_PROMPT = env.str(
    "ENGINE_INSTANT_NEGATIVE_PROMPT", default="blurry, deformed, extra fingers, watermark, text"
)
ENGINE_INSTANT_STEPS = env.int("ENGINE_INSTANT_STEPS", default=30)
ENGINE_INSTANT_SCALE = env.float("ENGINE_INSTANT_SCALE", default=0.7)

# --- Templates (templates_app) --------------------------------------------------------------------------------
# The largest style LoRA a photographer may upload (SDXL LoRAs at rank 128 are a few hundred MB).
STYLE_LORA_MAX_BYTES = env.int("STYLE_LORA_MAX_BYTES", default=400 * 1024 * 1024)

# --- Render runs (generation/runs.py, docs/runs.md) ------------------------------------------------------------
# GPU seconds per image per denoising step at the native size (batch 4 on an H100; docs/engine.md "Measured"),
# and the cost of loading a base model once per group of a run: the estimate shown before a run starts.
ENGINE_SECONDS_PER_STEP = env.json("ENGINE_SECONDS_PER_STEP", default={"sd15": 0.013, "sdxl": 0.048, "tiny": 0.09})
ENGINE_MODEL_LOAD_SECONDS = env.json("ENGINE_MODEL_LOAD_SECONDS", default={"sd15": 8, "sdxl": 20, "tiny": 1})
# The best portraits of each template in a run marked as picks (unflagged first).
RENDER_PICKS_PER_TEMPLATE = env.int("RENDER_PICKS_PER_TEMPLATE", default=2)
# Images rendered together in one pipeline call.
RENDER_BATCH_SIZE = env.int("RENDER_BATCH_SIZE", default=4)

# --- Client galleries (galleries/, docs/galleries.md) ----------------------------------------------------------
# Wrong gallery passwords and PINs, counted with django-ratelimit in the default cache (galleries/access.py),
# as "<count>/<period>" (s, m, h, d; "10/15m"): per gallery and client address (an IPv6 address counts per
# /GALLERY_SECRET_IPV6_PREFIX), past which that address waits; and per gallery across all addresses, past
# which the gallery LOCKS until one of the studio's owners unlocks it (the studio is emailed).
GALLERY_SECRET_ADDRESS_RATE = env.str("GALLERY_SECRET_ADDRESS_RATE", default="10/15m")
# Wrong coupon codes one address (an IPv6 /64) may try in galleries before every code it types is refused (429)
# until the window ends (billing/views_gallery.py).
COUPON_GUESS_RATE = env.str("COUPON_GUESS_RATE", default="20/1h")
# Who makes and ships print orders (billing/fulfilment.py): a registered fulfiller's key; the studio itself by
# default (a lab's integration registers its own).
PRINT_FULFILMENT_PROVIDER = env.str("PRINT_FULFILMENT_PROVIDER", default="studio")
GALLERY_SECRET_GALLERY_RATE = env.str("GALLERY_SECRET_GALLERY_RATE", default="20/30d")
GALLERY_SECRET_IPV6_PREFIX = env.int("GALLERY_SECRET_IPV6_PREFIX", default=64)
# How long the signed links of a gallery's watermarked previews, and of an entitled download, work.
GALLERY_PREVIEW_LINK_SECONDS = env.int("GALLERY_PREVIEW_LINK_SECONDS", default=3600)
GALLERY_DOWNLOAD_LINK_SECONDS = env.int("GALLERY_DOWNLOAD_LINK_SECONDS", default=120)
# "More like me" requests a client may have waiting at once, and how often the gallery page checks on them.
GALLERY_MAX_PENDING_REQUESTS = env.int("GALLERY_MAX_PENDING_REQUESTS", default=3)
GALLERY_POLL_SECONDS = env.int("GALLERY_POLL_SECONDS", default=3)

# --- Billing with Stripe (billing/, docs/billing.md, docs/billing-orders.md) -----------------------------------
# Empty (the embedded default): payments are off, and the billing pages and galleries say so (billing.stripe_client
# .is_configured). A key from the Stripe dashboard (sk_test_… or sk_live_…), or STRIPE_API_BASE pointing at a
# local fake (localstripe, the tests' fake server), turns them on.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # empty: Stripe's own API; tests point it at fakes
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")  # empty: the endpoint answers 503
STRIPE_CONNECT_WEBHOOK_SECRET = env.str("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# GPU credits: reserved when a job is queued, settled on what it used (billing/credits.py). Off in the embedded
# demo (no plan there); production turns it on.
BILLING_ENFORCE_CREDITS = env.bool("BILLING_ENFORCE_CREDITS", default=False)
# The platform's share of each client purchase (a destination charge to the studio's connected account).
BILLING_APPLICATION_FEE_PERCENT = env.float("BILLING_APPLICATION_FEE_PERCENT", default=10.0)
STRIPE_CONNECT_ACCOUNT_TYPE = env.str("STRIPE_CONNECT_ACCOUNT_TYPE", default="express")
# Outgoing webhooks (billing/webhooks_out.py): an endpoint whose host resolves to a private, loopback, link-local
# or reserved address is refused (on save and at each send), and production wants https, unless this is on (a
# development machine talking to its own tools; tests that run a receiver on loopback).
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
# Digital doubles are encrypted at rest (Fernet). Comma list of keys (Fernet.generate_key()): the first
# encrypts, every one decrypts (add a new key first to rotate, then `manage.py engine rotate-keys`). Empty: a
# key derived from SECRET_KEY (development only; `check --deploy` warns).
DOUBLE_ENCRYPTION_KEYS = env.list("DOUBLE_ENCRYPTION_KEYS", default=[])

# --- Email ----------------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Studio SaaS <no-reply@localhost>")
# The platform's own name (pages outside a studio: sign-in, sign-up, the studio chooser), the same in every language.
PLATFORM_NAME = env.str("PLATFORM_NAME", default="Studio SaaS")

# --- i18n -----------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages of every page. A studio's clients read theirs (galleries, the self-upload link, consent, emails)
# in the studio's default (Studio.client_language, on the branding page) or their own choice on the page; the
# studio's staff read theirs in their own (the account menu's switcher, else the browser's). tenants/i18n.py.
# Catalogues: locale/<code>/LC_MESSAGES/django.po,
# compiled to the committed django.mo by `manage.py compile_catalogues` (docs/galleries.md "Languages").
LANGUAGES = [("en", "English"), ("fr", "Français"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Security (production switches) ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp 4; docs/architecture.md "Security headers"): scripts and styles come only
# from this site's static files (no inline <script>, <style>, style="" or on*= anywhere: tests/test_csp.py), and
# nothing from another origin. Images are this site's own too: private media is streamed by the app through signed
# links (tenants/media.py), never redirected to the storage, so no S3 origin is needed even with S3_ENDPOINT_URL.
# The forms that start a Stripe payment, the customer portal or Connect onboarding answer with a redirect to
# Stripe's hosted page, which form-action governs too (studio_saas/csp.py adds STRIPE_API_BASE's origin when a
# local fake serves those pages). CSP_REPORT_ONLY=1 sends the policy as Content-Security-Policy-Report-Only instead
# (to try it on a live site); CSP_REPORT_URI names where browsers report violations.
STRIPE_HOSTED_ORIGINS = ["https://checkout.stripe.com", "https://billing.stripe.com", "https://connect.stripe.com"]
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *STRIPE_HOSTED_ORIGINS],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
if env.str("CSP_REPORT_URI", default=""):
    _CSP["DIRECTIVES"]["report-uri"] = [env.str("CSP_REPORT_URI")]
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY = None
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)

# Prometheus /metrics: open on loopback in development; in production set METRICS_TOKEN (Bearer).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Logging (structlog) --------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=PRODUCTION)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "studio_saas.logging.build_formatter",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}
