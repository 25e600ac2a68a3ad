"""Production settings come from the environment and pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        REDIS_URL="redis://127.0.0.1:6379/0",  # the shared cache (the check connects to nothing)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_gallery_guesses_are_counted_per_process(tmp_path):
    """Issue 13, finding 5: the budget of wrong gallery passwords and PINs is counted in the default cache; without
    Redis each web process would count alone, so `check --deploy` says so."""
    without_redis = {k: v for k, v in _production(tmp_path).items() if k != "REDIS_URL"}
    result = _manage("check", "--deploy", **without_redis)
    assert "galleries.W001" in result.stdout + result.stderr, result.stdout + result.stderr
    result = _manage("check", "--deploy", **_production(tmp_path))
    assert "galleries.W001" not in result.stdout + result.stderr


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


def _production(data_dir: Any) -> dict[str, str]:
    """The environment of a production deployment whose settings pass `check --deploy` (but for the database)."""
    return {
        "DJANGO_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-" + "x9Y" * 10,
        "DJANGO_ALLOWED_HOSTS": "portraits.example.com",
        "DOUBLE_ENCRYPTION_KEYS": "9Js7QJtq7tJ0QkY3vC2m3cR8Pq1S0dFh4l5xW6zYb2A=",
        "DATA_DIR": str(data_dir),
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # the shared cache (`check` connects to nothing)
    }


@pytest.mark.postgres
def test_plain_check_deploy_warns_when_the_app_role_bypasses_rls(tmp_path):
    """Issue 13, finding 6: the documented `manage.py check --deploy`, without `--database`, reports
    tenants.W001 for a superuser application role (it was tagged as a database check, which Django runs only
    with `--database`)."""
    from django.db import connection

    db = connection.settings_dict
    superuser_url = f"postgres://postgres@{db['HOST']}:{db['PORT']}/postgres"
    result = _manage(
        "check",
        "--deploy",
        **_production(tmp_path),
        DATABASE_URL=superuser_url,
    )
    output = result.stdout + result.stderr
    assert "tenants.W001" in output, output
    assert output.count("tenants.W001") == 1, output


def test_check_deploy_survives_an_unreachable_database(tmp_path):
    """Issue 13, finding 6: the RLS check now runs under every `check --deploy`; a PostgreSQL that can't be
    reached (nothing listens on the port) doesn't crash `check`, and the check reports nothing."""
    result = _manage(
        "check",
        "--deploy",
        **_production(tmp_path),
        DATABASE_URL="postgres://nobody@127.0.0.1:1/nothing",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "tenants.W001" not in output and "Traceback" not in output, output
