"""Production settings come from the environment and pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_PRODUCTION="1",
        DJANGO_SECRET_KEY="k" * 20 + "-production-secret-" + "x9Y" * 10,
        DJANGO_ALLOWED_HOSTS="portraits.example.com",
        DOUBLE_ENCRYPTION_KEYS="9Js7QJtq7tJ0QkY3vC2m3cR8Pq1S0dFh4l5xW6zYb2A=",  # a Fernet key (32 bytes, base64)
        DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_requires_a_real_secret_key(tmp_path):
    result = _manage("check", DJANGO_PRODUCTION="1", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.postgres
def test_check_deploy_warns_when_the_app_role_bypasses_rls(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    superuser_url = f"postgres://postgres@{db['HOST']}:{db['PORT']}/postgres"
    result = _manage(
        "check",
        "--deploy",
        "--database",
        "default",
        DJANGO_PRODUCTION="1",
        DJANGO_SECRET_KEY="k" * 20 + "-production-secret-" + "x9Y" * 10,
        DJANGO_ALLOWED_HOSTS="portraits.example.com",
        DATA_DIR=str(tmp_path),
        DATABASE_URL=superuser_url,
    )
    assert "tenants.W001" in result.stdout + result.stderr
