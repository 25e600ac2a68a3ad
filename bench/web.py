"""Web benchmark: the studio dashboard against a trivial view, both served by gunicorn on loopback.

The project's way: gunicorn, PostgreSQL as the application role (row-level security on), the tenant middleware,
the signed-in owner's dashboard with recent jobs. The baseline: `/ping`, a view that touches neither the
database nor a template, in the same server, same run, same clients. Prints p50/p95 latency and requests per
second for both, then one summary line with the ratios.

    .venv/bin/python bench/web.py [--clients 8] [--seconds 10] [--workers 2]

Needs PostgreSQL (DATABASE_URL of an owner role, default postgres://postgres@127.0.0.1:5432/studio_bench).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(owner_url: str, data_dir: str) -> tuple[str, str]:
    """Migrate as the owner, create the app role, a studio with an owner and some jobs; return
    (app role DATABASE_URL, session cookie)."""
    os.environ.update(DATABASE_URL=owner_url, DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="studio_saas.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from tenants.context import tenant_context
    from tenants.management.commands.create_app_role import ensure_app_role
    from tenants.models import Membership, Role, Studio, User

    call_command("migrate", verbosity=0, interactive=False)
    ensure_app_role(settings.DATABASE_APP_ROLE)
    studio, _ = Studio.objects.get_or_create(slug="bench", defaults={"name": "Bench Studio"})
    user = User.objects.filter(email="owner@bench.example").first() or User.objects.create_user(
        "owner@bench.example", "bench-password-123"
    )
    with tenant_context(studio):
        Membership.objects.get_or_create(user=user, defaults={"role": Role.OWNER})
        try:
            from generation.models import Job

            if Job.objects.count() < 20:
                for i in range(20):
                    Job.objects.create(kind="demo.countdown", payload={"steps": i}, created_by=user)
        except ImportError:
            pass
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    db = settings.DATABASES["default"]
    app_url = f"postgres://{settings.DATABASE_APP_ROLE}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return app_url, session.session_key


def load(url: str, cookies: dict, clients: int, seconds: float) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        with httpx.Client(cookies=cookies, timeout=30) as client:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = client.get(url)
                mine.append(time.perf_counter() - start)
                if response.status_code != 200:
                    bad += 1
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started, errors


def summary(name: str, latencies: list[float], elapsed: float, errors: int) -> dict:
    qs = statistics.quantiles(latencies, n=100)
    result = {
        "p50": qs[49] * 1000,
        "p95": qs[94] * 1000,
        "rps": len(latencies) / elapsed,
        "n": len(latencies),
        "errors": errors,
    }
    print(
        f"{name:<10} n={result['n']:<6} p50={result['p50']:.1f} ms  p95={result['p95']:.1f} ms  "
        f"rps={result['rps']:.0f}  errors={errors}"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio_bench"),
    )
    args = parser.parse_args()

    subprocess.run(  # the bench database, created once
        ["psql", args.database_url.rsplit("/", 1)[0] + "/postgres", "-qc", "CREATE DATABASE studio_bench"],
        capture_output=True,
        check=False,
    )
    data_dir = tempfile.mkdtemp(prefix="bench-web-")
    app_url, session_key = prepare(args.database_url, data_dir)
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=app_url,
        DATA_DIR=data_dir,
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
        DATABASE_CONN_MAX_AGE="60",
    )
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = subprocess.Popen(
        [gunicorn, "studio_saas.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    cookies = {"sessionid": session_key}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            print("gunicorn did not start", file=sys.stderr)
            return 1
        dashboard = f"{base}/s/bench/"
        check = httpx.get(dashboard, cookies=cookies)
        if check.status_code != 200:
            print(f"dashboard answered {check.status_code}; is the owner signed in?", file=sys.stderr)
            return 1
        for url in (dashboard, f"{base}/ping"):  # warm-up
            load(url, cookies, args.clients, 1.0)
        print(f"gunicorn {args.workers} workers, {args.clients} concurrent clients, {args.seconds:.0f} s per view")
        dash = summary("dashboard", *load(dashboard, cookies, args.clients, args.seconds))
        trivial = summary("trivial", *load(f"{base}/ping", cookies, args.clients, args.seconds))
        print(
            f"bench/web: dashboard p50 {dash['p50']:.1f} ms p95 {dash['p95']:.1f} ms {dash['rps']:.0f} req/s | "
            f"trivial p50 {trivial['p50']:.1f} ms p95 {trivial['p95']:.1f} ms {trivial['rps']:.0f} req/s | "
            f"ratio dashboard/trivial: p50 x{dash['p50'] / trivial['p50']:.2f}, "
            f"p95 x{dash['p95'] / trivial['p95']:.2f}, throughput x{dash['rps'] / trivial['rps']:.2f}"
        )
        return 0 if dash["errors"] == trivial["errors"] == 0 else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
