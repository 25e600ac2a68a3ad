"""Test fixtures. Every test that touches data has two studios with data (Zulip's rule): A is the one the test
acts as; B is the other tenant whose ids must be rejected.

On PostgreSQL the suite migrates as the owner role, then runs as the application role (no superuser, no
BYPASSRLS), so row-level security applies to every query the tests make, exactly as in production."""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation

from tenants.context import tenant_context
from tenants.models import Membership, Role, Studio, User

TEST_PASSWORD = "correct-horse-battery-staple"

#: The site's password hashers (Argon2 first, tests/tenants/test_auth.py holds it to that). The tests hash with MD5
#: first: Argon2 costs 0.16 s a hash on purpose, and nearly every test makes two studio owners with a password (a
#: few minutes of the suite's CPU); the sites the tests start as processes (the embedded default, runall) keep
#: Argon2, and a stored Argon2 hash still verifies.
SITE_PASSWORD_HASHERS = list(settings.PASSWORD_HASHERS)
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *SITE_PASSWORD_HASHERS]


def pytest_report_header(config: pytest.Config) -> str:
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        role = settings.DATABASE_APP_ROLE
        return f"database: PostgreSQL {db.get('HOST')}:{db.get('PORT')} (tests run as role {role!r})"
    return "database: SQLite — PostgreSQL-only tests (row-level security, isolation at the SQL level) are SKIPPED"


#: The longest test files (a minute or more of a process each: `--durations` of a fresh `make test`), run first, so
#: that the processes of `make test` (a file per process at a time) don't end with one of them still on a long
#: file while the other has nothing left: the rest fill in around them.
LONG_FILES = (
    "tests/e2e/test_quickstart.py",
    "tests/clients/test_list_scale.py",
    "tests/test_api_schema.py",
    "tests/generation/test_model_affinity.py",
    "tests/generation/test_scale_out.py",
    "tests/engine/test_training.py",
    "tests/e2e/test_accessibility.py",
    "tests/test_isolation.py",
)


def _long_first(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_long_first)  # stable: the order within a file, and of the other files, stays
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: no PostgreSQL answered (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def expected_queries(*, postgresql: int, sqlite: int) -> int:
    """The exact query count a test asserts, for the database the suite runs on. They differ because on
    PostgreSQL the tenant context is carried into each transaction with `SELECT set_config(...)` statements
    (SET LOCAL of app.studio_id / app.platform, and the reset to empty before a studio is known: tenants/rls.py,
    tenants/db), which Django's query log counts; the SQLite fallback has no row-level security and runs none."""
    return postgresql if connection.vendor == "postgresql" else sqlite


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A test database of this process's own (each pytest-xdist worker too, instead of pytest-django's
    `_gw0` suffix, which two runs against one server would share): on PostgreSQL test_<name>_<pid>_<random>, so
    two runs against one server never create, flush or drop each other's database; on SQLite a file in a fresh
    temporary folder instead of Django's in-memory shared-cache database, whose table locks ignore the busy
    timeout (the live server's thread then fails with "database table is locked" beside the test's), so WAL and
    the busy timeout of the settings apply as they do in the embedded default."""
    db = settings.DATABASES["default"]
    test = db.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        if not test.get("NAME"):
            test["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")
    elif connection.vendor == "postgresql":
        if not test.get("NAME"):
            test["NAME"] = f"test_{db['NAME']}_{os.getpid()}_{secrets.token_hex(3)}"
    else:
        return
    connection.settings_dict.setdefault("TEST", {})["NAME"] = test["NAME"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """After pytest-django has created and migrated the test database as the owner, switch the connection to
    the application role for the whole session (and back for the teardown that drops the database)."""
    if connection.vendor != "postgresql":
        yield
        return
    from tenants.management.commands.create_app_role import ensure_app_role

    role = settings.DATABASE_APP_ROLE
    with django_db_blocker.unblock():
        # The role is the server's, not the database's: the pytest-xdist workers of one run (and two runs against
        # one server) create or alter it one at a time (two at once: "role already exists", "tuple concurrently
        # updated").
        with open(Path(tempfile.gettempdir()) / "studio-saas-test-app-role.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ensure_app_role(role)
        with connection.cursor() as cursor:
            # Tests only: transactional tests (live server) empty tables with TRUNCATE between tests, tables that a
            # test's migrations drop and create again (tests/test_migrations.py) included.
            cursor.execute(f'GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO "{role}"')
            cursor.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT TRUNCATE ON TABLES TO "{role}"')
        owner = {k: connection.settings_dict.get(k) for k in ("USER", "PASSWORD")}
        connection.close()
        connection.settings_dict.update(USER=role, PASSWORD="")
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            connection.close()
            connection.settings_dict.update(owner)


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: a request that activated a client's language (LocaleMiddleware
    leaves it active in the thread) or a test that activated one never decides what the next test reads."""
    translation.deactivate()
    yield
    translation.deactivate()


@dataclass
class Tenant:
    studio: Studio
    owner: User
    membership: Membership

    @property
    def prefix(self) -> str:
        return f"/s/{self.studio.slug}"


def make_tenant(slug: str, name: str, **studio_fields: object) -> Tenant:
    studio = Studio.objects.create(name=name, slug=slug, **studio_fields)
    owner = User.objects.create_user(f"owner@{slug}.example", TEST_PASSWORD, full_name=f"{name} Owner")
    with tenant_context(studio):
        membership = Membership.objects.create(user=owner, role=Role.OWNER)
    return Tenant(studio, owner, membership)


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return make_tenant("studio-a", "Studio A", primary_color="#aa3366")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return make_tenant("studio-b", "Studio B", primary_color="#3366aa")


@pytest.fixture
def two_tenants(tenant_a: Tenant, tenant_b: Tenant) -> tuple[Tenant, Tenant]:
    return tenant_a, tenant_b


@pytest.fixture
def client_a(client, tenant_a: Tenant):  # noqa: ANN001
    """A test client signed in as studio A's owner."""
    client.force_login(tenant_a.owner)
    return client


def add_member(tenant: Tenant, email: str, role: str) -> User:
    user = User.objects.create_user(email, TEST_PASSWORD)
    with tenant_context(tenant.studio):
        Membership.objects.create(user=user, role=role)
    return user
