"""Web benchmark: the studio dashboard and a client's gallery page against a trivial view, all served by gunicorn
on loopback.

The project's way: gunicorn, PostgreSQL as the application role (row-level security on), the tenant middleware,
the signed-in owner's dashboard with recent jobs, and a client's gallery (the share link, no account, no
password) of `--portraits` portraits (default 60) with real thumbnail and watermarked preview files in private
storage: the page with its signed preview links, as a phone opens it from the link in the email. The baseline:
`/ping`, a view that touches neither the database nor a template, in the same server, same run, same clients.
Prints p50/p95 latency and requests per second for each, then one summary line per page with the ratios against
the trivial view.

    .venv/bin/python bench/web.py [--clients 8] [--seconds 10] [--workers 2] [--portraits 60]

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


def prepare(owner_url: str, data_dir: str, portraits: int = 60) -> tuple[str, str, str | None]:
    """Migrate as the owner, create the app role, a studio with an owner and some jobs, and a client's gallery of
    `portraits` portraits with real files; return (app role DATABASE_URL, session cookie, gallery share token or
    None when the client's gallery pages are not installed)."""
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
            from jobs.models import Job

            if Job.objects.count() < 20:
                for i in range(20):
                    Job.objects.create(kind="demo.countdown", payload={"steps": i}, created_by=user)
        except ImportError:
            pass
        token = bench_gallery(user, portraits) if portraits > 0 else None
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    db = settings.DATABASES["default"]
    app_url = f"postgres://{settings.DATABASE_APP_ROLE}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return app_url, session.session_key, token


def _image_bytes(size: tuple[int, int], seed: int, fmt: str) -> bytes:
    """A smooth colour gradient (compresses like a photo, not like noise), as JPEG or WebP."""
    import io

    from PIL import Image

    w, h = size
    small = Image.new("RGB", (8, 10))
    small.putdata(
        [
            ((seed * 37 + x * 29) % 256, (seed * 11 + y * 23) % 256, (seed * 53 + x * y * 7) % 256)
            for y in range(10)
            for x in range(8)
        ]
    )
    image = small.resize((w, h), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, format=fmt, quality=85)
    return out.getvalue()


def bench_gallery(user: object, count: int) -> str | None:
    """A client with a double, a run of `count` portraits (thumbnail 512 px WebP, watermarked preview 800x1000
    JPEG, image 1024x1280 JPEG, written to private storage) and a gallery of them with no password and no expiry.
    Made once per bench database (found again by its title). Runs in the studio's tenant context."""
    from django.core.files.base import ContentFile
    from django.urls import NoReverseMatch, reverse

    from clients.models import Client
    from galleries import services
    from galleries.models import Gallery
    from generation.models import DigitalDouble, Portrait, RenderRun

    try:
        reverse("gallery_public", urlconf="studio_saas.urls_studio", kwargs={"gallery_token": "x" * 32})
    except NoReverseMatch:
        return None
    title = f"Bench gallery ({count} portraits)"
    existing = Gallery.objects.filter(title=title, revoked_at__isnull=True).first()
    if existing is not None and existing.entries.count() == count:
        return existing.token
    client = Client.objects.create(name="Bench Client", email="client@bench.example")
    double = DigitalDouble.objects.create(
        client=client,
        base_model="tiny-sd15",
        family="sd15",
        is_demo=True,
        trigger="ohwx",
        class_word=DigitalDouble.ClassWord.PERSON,
        status=DigitalDouble.Status.READY,
        created_by=user,
    )
    run = RenderRun.objects.create(double=double, images=count, created_by=user)
    files = [
        (
            _image_bytes((512, 640), i, "WEBP"),
            _image_bytes((800, 1000), i, "JPEG"),
            _image_bytes((1024, 1280), i, "JPEG"),
        )
        for i in range(6)
    ]
    portraits = []
    for i in range(count):
        thumbnail, preview, image = files[i % len(files)]
        portrait = Portrait(
            double=double,
            run=run,
            recipe={"seed": i, "width": 1024, "height": 1280},
            likeness=70.0,
            rank=i + 1,
            is_pick=True,
            is_demo=True,
        )
        portrait.studio_id = run.studio_id
        portrait.image.save("portrait.jpg", ContentFile(image), save=False)
        portrait.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
        portrait.preview.save("preview.jpg", ContentFile(preview), save=False)
        portrait.save()
        portraits.append(portrait)
    gallery = services.create_gallery(
        client=client, title=title, portraits=portraits, run=run, never_expires=True, user=user
    )
    return gallery.token


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


def line(name: str, result: dict, trivial: dict, short: str = "") -> str:
    """The one-line summary of a page against the trivial view."""
    short = short or name
    return (
        f"bench/web: {name} p50 {result['p50']:.1f} ms p95 {result['p95']:.1f} ms {result['rps']:.0f} req/s | "
        f"trivial p50 {trivial['p50']:.1f} ms p95 {trivial['p95']:.1f} ms {trivial['rps']:.0f} req/s | "
        f"ratio {short}/trivial: p50 x{result['p50'] / trivial['p50']:.2f}, "
        f"p95 x{result['p95'] / trivial['p95']:.2f}, throughput x{result['rps'] / trivial['rps']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--portraits", type=int, default=60, help="portraits in the client's gallery (0: skip it)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio_bench"),
    )
    args = parser.parse_args()

    server_url, db_name = args.database_url.rsplit("/", 1)
    subprocess.run(  # the bench database, created once
        ["psql", server_url + "/postgres", "-qc", f'CREATE DATABASE "{db_name}"'],
        capture_output=True,
        check=False,
    )
    data_dir = tempfile.mkdtemp(prefix="bench-web-")
    app_url, session_key, gallery_token = prepare(args.database_url, data_dir, args.portraits)
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
        gallery = f"{base}/s/bench/g/{gallery_token}/" if gallery_token else None
        if gallery is not None:
            check = httpx.get(gallery)
            if check.status_code != 200 or "/media/" not in check.text:
                print(f"the gallery page answered {check.status_code} without its previews", file=sys.stderr)
                return 1
        else:
            print("no client gallery pages (gallery_public): measuring the dashboard only", file=sys.stderr)
        for url in (dashboard, gallery, f"{base}/ping"):  # warm-up
            if url:
                load(url, cookies if url == dashboard else {}, args.clients, 1.0)
        print(f"gunicorn {args.workers} workers, {args.clients} concurrent clients, {args.seconds:.0f} s per view")
        dash = summary("dashboard", *load(dashboard, cookies, args.clients, args.seconds))
        # The client has no account: each simulated phone starts without cookies (it keeps the gallery's session).
        page = summary("gallery", *load(gallery, {}, args.clients, args.seconds)) if gallery else None
        trivial = summary("trivial", *load(f"{base}/ping", cookies, args.clients, args.seconds))
        print(line("dashboard", dash, trivial))
        if page is not None:
            print(line(f"gallery ({args.portraits} portraits)", page, trivial, short="gallery"))
        errors = dash["errors"] + trivial["errors"] + (page["errors"] if page else 0)
        return 0 if errors == 0 else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
