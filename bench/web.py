"""Web benchmark at a real studio's size: the pages a studio and its clients open most, against a trivial view,
all served by gunicorn on loopback.

The project's way: gunicorn, PostgreSQL as the application role (row-level security on), the tenant middleware,
the settings' own connection behaviour (``DATABASE_CONN_MAX_AGE`` as configured; ``--conn-max-age N`` measures
another), and realistic data (``--scale real``, the default; made once per bench database):

- the bench studio and three neighbour studios in the same tables (as in production, every studio has big
  neighbours), each with ``--jobs`` jobs (default 50,000; ties on ``created_at``) and ``--clients`` clients
  (default 10,000);
- the bench studio's credit ledger of ``--ledger`` entries (default 1,000,000, one every 43 s: about 500 days of a
  studio running 1,000 GPU jobs a day, so the billing page's 30-day usage reads about 60,000 of them);
- a client's gallery (the share link, no account) of ``--portraits`` portraits (default 500) with real thumbnail,
  preview and image files in private storage.

Pages: the signed-in owner's dashboard, the client's gallery (first page, as a phone opens it from the email),
the billing page, the jobs list's first and last (oldest) page, the clients list and a client search. The baseline:
``/ping``, a view that touches neither the database nor a template, in the same server and run. Beside them, the
**signed-in floor** (bench/floor_wsgi.py, the application gunicorn serves here): an empty studio page for the
signed-in owner (tenant, transaction, session, user, membership, the studio layout), what every studio page pays
before it does anything; the summary gives it beside the targets.

Views are **interleaved**: ``--rounds`` rounds (default 5), each loading every view for ``--seconds`` (default 3)
with ``--clients`` concurrent clients, in a new random order each round; each round gives each page's p50/p95 and
its ratio to the trivial view measured in that same round, and the figures are the **medians over the rounds**.
Prints one line per page, then one summary line with the issue's targets (gallery, billing page and the jobs
list's last page at most 3x the trivial view's p95).

    .venv/bin/python bench/web.py [--scale real|small] [--rounds 5] [--seconds 3] [--clients 8] [--workers 2]

Needs PostgreSQL (DATABASE_URL of an owner role, default postgres://postgres@127.0.0.1:5432/studio_bench).
"""

from __future__ import annotations

import argparse
import os
import random
import re
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


SCALES = {
    "real": {"jobs": 50_000, "clients": 10_000, "ledger": 1_000_000, "portraits": 500, "neighbours": 3},
    "small": {"jobs": 500, "clients": 200, "ledger": 1_000, "portraits": 60, "neighbours": 1},
}


def prepare(owner_url: str, data_dir: str, sizes: dict[str, int]) -> tuple[str, str, str | None]:
    """Migrate as the owner, create the app role, the bench studio with its owner, its neighbours, and the rows of
    `sizes` (made once per bench database; what is there already counts); return (app role DATABASE_URL, session
    cookie, gallery share token or None when the client's gallery pages are not installed)."""
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
    started = time.perf_counter()
    neighbours = [
        Studio.objects.get_or_create(slug=f"bench-neighbour-{i}", defaults={"name": f"Neighbour {i}"})[0]
        for i in range(1, sizes["neighbours"] + 1)
    ]
    for each in (studio, *neighbours):
        with tenant_context(each):
            seed_rows(
                each, jobs=sizes["jobs"], clients=sizes["clients"], ledger=sizes["ledger"] if each == studio else 0
            )
    sync_balance()
    with tenant_context(studio):
        Membership.objects.get_or_create(user=user, defaults={"role": Role.OWNER})
        token = bench_gallery(user, sizes["portraits"]) if sizes["portraits"] > 0 else None
    print(f"data ready in {time.perf_counter() - started:.1f} s: {sizes}", flush=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    db = settings.DATABASES["default"]
    app_url = f"postgres://{settings.DATABASE_APP_ROLE}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return app_url, session.session_key, token


def seed_rows(studio: object, *, jobs: int, clients: int, ledger: int) -> None:
    """Jobs (three to a second: ties on created_at, as a busy worker makes them), clients and credit-ledger entries
    for `studio`, up to the counts asked, with INSERT ... SELECT generate_series (seconds, not minutes). Runs in
    the studio's tenant context (the tables' row-level security needs it)."""
    from django.db import connection

    from billing.models import CreditEntry
    from clients.models import Client
    from jobs.models import Job

    sid = studio.pk  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        missing = jobs - Job.objects.count()
        if missing > 0:
            cursor.execute(
                "INSERT INTO generation_job (studio_id, kind, state, progress, progress_message, attempts, "
                "max_attempts, error, payload, cluster, cancel_requested, created_at, updated_at, finished_at) "
                "SELECT %s, 'demo.countdown', 'succeeded', 100, 'Done', 1, 3, '', '{}'::jsonb, 'default', false, "
                "now() - ((g / 3) || ' seconds')::interval, now(), now() FROM generate_series(1, %s) g",
                [sid, missing],
            )
        missing = clients - Client.objects.count()
        if missing > 0:
            cursor.execute(
                "INSERT INTO clients_client (studio_id, name, email, phone, notes, status, created_at, "
                "consent_method) SELECT %s, 'Client ' || md5(g::text), 'client' || g || '@example.com', '', '', "
                "'active', now() - (g || ' minutes')::interval, '' FROM generate_series(1, %s) g",
                [sid, missing],
            )
        missing = ledger - CreditEntry.objects.count()
        if missing > 0:
            cursor.execute(
                "INSERT INTO billing_creditentry (studio_id, kind, amount, reference, created_at) "
                "SELECT %s, CASE WHEN g %% 2 = 0 THEN 'grant' ELSE 'settle' END, "
                "CASE WHEN g %% 2 = 0 THEN 3 ELSE -2 END, 'bench-' || g, now() - ((g * 43) || ' seconds')::interval "
                "FROM generate_series(1, %s) g",
                [sid, missing],
            )
        cursor.execute("ANALYZE generation_job; ANALYZE clients_client; ANALYZE billing_creditentry")


def sync_balance() -> None:
    """The rows above bypass the ledger's writers (raw SQL): bring the running balance back in line with the ledger
    with the billing app's own check (`manage.py billing check-balances --fix`, docs/billing.md)."""
    from billing.balances import check_balances

    check_balances(fix=True)


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
    stored: list[tuple[str, str, str]] = []
    for i in range(count):
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
        if len(stored) < len(files):  # six sets of real files; the other portraits point at them (no rewrite)
            thumbnail, preview, image = files[len(stored)]
            portrait.image.save("portrait.jpg", ContentFile(image), save=False)
            portrait.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
            portrait.preview.save("preview.jpg", ContentFile(preview), save=False)
            stored.append((portrait.image.name, portrait.thumbnail.name, portrait.preview.name))
        else:
            portrait.image.name, portrait.thumbnail.name, portrait.preview.name = stored[i % len(stored)]
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


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    qs = statistics.quantiles(latencies, n=100)
    return qs[49] * 1000, qs[94] * 1000


def last_page(base: str, first: str, cookies: dict, limit: int = 5000) -> str:
    """The URL of a list's last (oldest) page: its "last" link when it has one, else its "next" links followed to
    the end (a keyset list has no page numbers to jump to)."""
    url = first
    for _ in range(limit):
        html = httpx.get(url, cookies=cookies, timeout=60).text
        found = re.search(r'<a[^>]*rel="last"[^>]*href="([^"]+)"', html) or re.search(
            r'<a[^>]*href="([^"]+)"[^>]*rel="last"', html
        )
        if found:
            return base + found.group(1).replace("&amp;", "&") if found.group(1).startswith("/") else found.group(1)
        found = re.search(r'<a[^>]*rel="next"[^>]*href="([^"]+)"', html) or re.search(
            r'<a[^>]*href="([^"]+)"[^>]*rel="next"', html
        )
        if not found:
            return url
        href = found.group(1).replace("&amp;", "&")
        url = href if href.startswith("http") else (base + href if href.startswith("/") else first.split("?")[0] + href)
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="real")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per studio (default: the scale's)")
    parser.add_argument("--clients-rows", type=int, default=None, help="clients per studio (default: the scale's)")
    parser.add_argument("--ledger", type=int, default=None, help="the bench studio's ledger entries")
    parser.add_argument("--portraits", type=int, default=None, help="portraits in the client's gallery (0: skip)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per view per round")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--conn-max-age", default=None, help="DATABASE_CONN_MAX_AGE for the server (default: the settings')"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio_bench"),
    )
    args = parser.parse_args()
    sizes = dict(SCALES[args.scale])
    for key, value in (("jobs", args.jobs), ("clients", args.clients_rows), ("ledger", args.ledger)):
        if value is not None:
            sizes[key] = value
    if args.portraits is not None:
        sizes["portraits"] = args.portraits

    server_url, db_name = args.database_url.rsplit("/", 1)
    subprocess.run(  # the bench database, created once
        ["psql", server_url + "/postgres", "-qc", f'CREATE DATABASE "{db_name}"'],
        capture_output=True,
        check=False,
    )
    data_dir = os.environ.get("BENCH_DATA_DIR") or str(Path(tempfile.gettempdir()) / f"bench-web-{db_name}")
    Path(data_dir).mkdir(parents=True, exist_ok=True)  # kept with the database: the gallery's files live here
    app_url, session_key, gallery_token = prepare(args.database_url, data_dir, sizes)
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=app_url,
        DATA_DIR=data_dir,
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="studio_saas.settings",
    )
    env.pop("DATABASE_CONN_MAX_AGE", None)
    if args.conn_max_age is not None:
        env["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    from django.conf import settings

    conn_age = args.conn_max_age if args.conn_max_age is not None else settings.DATABASES["default"].get("CONN_MAX_AGE")
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = subprocess.Popen(
        [gunicorn, "bench.floor_wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    owner = {"sessionid": session_key}
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
        studio = f"{base}/s/bench/"
        views: dict[str, tuple[str, dict]] = {
            "trivial": (f"{base}/ping", {}),
            "signed-in floor": (f"{studio}bench-floor/", owner),
            "dashboard": (studio, owner),
            "billing": (f"{studio}billing/", owner),
            "jobs first page": (f"{studio}jobs/", owner),
            "jobs last page": (last_page(base, f"{studio}jobs/", owner), owner),
            "clients": (f"{studio}clients/", owner),
            "client search": (f"{studio}clients/?q=client12", owner),
        }
        if gallery_token:
            # The client has no account: each simulated phone starts without cookies.
            views[f"gallery ({sizes['portraits']} portraits)"] = (f"{studio}g/{gallery_token}/", {})
        for name, (url, cookies) in views.items():
            answer = httpx.get(url, cookies=cookies, timeout=60)
            if answer.status_code != 200:
                print(f"{name} ({url}) answered {answer.status_code}", file=sys.stderr)
                return 1
            load(url, cookies, args.clients, 0.5)  # warm-up
        print(
            f"gunicorn {args.workers} workers, {args.clients} concurrent clients, {args.rounds} rounds x "
            f"{args.seconds:.0f} s per view, views interleaved in a new order each round; CONN_MAX_AGE {conn_age}; "
            f"jobs last page: {views['jobs last page'][0].removeprefix(base)}",
            flush=True,
        )
        rounds: list[dict[str, tuple[float, float, float, int]]] = []
        order = list(views)
        rng = random.Random(0)
        for number in range(args.rounds):
            rng.shuffle(order)
            figures = {}
            for name in order:
                url, cookies = views[name]
                latencies, elapsed, errors = load(url, cookies, args.clients, args.seconds)
                p50, p95 = percentiles(latencies)
                figures[name] = (p50, p95, len(latencies) / elapsed, errors)
            rounds.append(figures)
            print(
                f"round {number + 1}: " + ", ".join(f"{name} p95 {figures[name][1]:.0f} ms" for name in order),
                flush=True,
            )
        errors = sum(figures[name][3] for figures in rounds for name in figures)
        summary = {}
        for name in views:
            p50 = statistics.median(r[name][0] for r in rounds)
            p95 = statistics.median(r[name][1] for r in rounds)
            rps = statistics.median(r[name][2] for r in rounds)
            ratio50 = statistics.median(r[name][0] / r["trivial"][0] for r in rounds)
            ratio95 = statistics.median(r[name][1] / r["trivial"][1] for r in rounds)
            summary[name] = ratio95
            print(
                f"bench/web: {name} p50 {p50:.1f} ms p95 {p95:.1f} ms {rps:.0f} req/s | ratio to trivial (median of "
                f"{len(rounds)} rounds): p50 x{ratio50:.2f}, p95 x{ratio95:.2f}"
            )
        targets = [name for name in summary if name.startswith(("gallery", "billing", "jobs last page"))]
        verdict = ", ".join(f"{name} x{summary[name]:.2f} {'ok' if summary[name] <= 3 else 'OVER'}" for name in targets)
        verdict += f" | the signed-in floor (an empty studio page) x{summary['signed-in floor']:.2f}"
        print(
            f"bench/web summary: {sizes['jobs']:,} jobs and {sizes['clients']:,} clients per studio in "
            f"{sizes['neighbours'] + 1} studios, {sizes['ledger']:,} ledger entries | p95 against the trivial view "
            f"(target <= 3x): {verdict} | errors {errors}"
        )
        return 0 if errors == 0 else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
