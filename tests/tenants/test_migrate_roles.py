"""`migrate` runs as the owner role (DATABASE_OWNER_URL) while the application connects as a role without DDL
rights; the result: tables owned by the owner, RLS forced, the app role limited to data access."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import environ
import psycopg
import pytest
from django.conf import settings

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_migrate_uses_the_owner_role_and_secures_every_tenant_table(tmp_path):
    owner = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    host, port, owner_user = owner["HOST"], owner["PORT"], owner["USER"]
    name = f"migrate_roles_{uuid.uuid4().hex[:8]}"
    admin = f"host={host} port={port} user={owner_user} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        role = settings.DATABASE_APP_ROLE  # created by the session fixture
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DJANGO_"))},
            "DATABASE_URL": f"postgres://{role}@{host}:{port}/{name}",
            "DATABASE_OWNER_URL": f"postgres://{owner_user}@{host}:{port}/{name}",
            "DATA_DIR": str(tmp_path),
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        with psycopg.connect(f"host={host} port={port} user={owner_user} dbname={name}") as conn:
            owners = {r[0] for r in conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname='public'")}
            assert owners == {owner_user}
            unsecured = conn.execute(
                """SELECT c.relname FROM pg_class c JOIN information_schema.columns col
                   ON col.table_name = c.relname AND col.column_name = 'studio_id' AND col.table_schema = 'public'
                   WHERE c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"""
            ).fetchall()
            assert unsecured == []
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE column_name = 'studio_id' AND table_schema = 'public'"
            ).fetchone()[0]
            assert tables >= 4
        # The application role reads and writes rows, but cannot change the schema.
        with psycopg.connect(f"host={host} port={port} user={role} dbname={name}") as conn:
            conn.execute("SELECT count(*) FROM tenants_studio")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("ALTER TABLE tenants_membership DISABLE ROW LEVEL SECURITY")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
