"""Intake benchmark: validating a 20-photo set against a plain Pillow decode-and-resize of the same files.

The project's way: the real `intake.validate_set` job through `jobs.tasks.run_job` (Django, an in-memory
SQLite database, files in a temporary private storage folder): per photo load_photo (sniff, limits, decode,
EXIF orientation, colour modes), a metadata-free thumbnail, dlib face checks and embedding, nudenet safety, the
face crop, the database writes; then the set-level identity and near-duplicate checks. The models are loaded
(and timed) before the measurement. The baseline: `Image.open(path).convert("RGB")` and a 512 px thumbnail of
the same 20 files, in the same process.

The set: 5 variants (original, mirrored, cropped, mirrored crop, tilted 8 degrees) of each of person A's four
photos from ../shared/fixtures/faces, saved as JPEG files.

    .venv/bin/python bench/intake.py [--repeat 3] [--long-side 4032]

`--long-side N` resizes every photo of the set so that its longer side is N pixels (4032: a 12 MP phone
photo), to see how the cost grows with resolution; by default the fixtures keep their own sizes (626-2333 px).

Prints the per-run figures, then one summary line. Target (issue 3): at most 0.25 s per photo on 2 cores.

End to end (`--e2e`, on by default when PostgreSQL answers; `--no-e2e` skips it): the same 20 files through a
real worker on PostgreSQL. The bench database (`--database-url`, an owner role, default
postgres://postgres@127.0.0.1:5432/studio_bench_intake, created once) is migrated as the owner with the project's
`manage.py migrate` and gets the application role with `manage.py create_app_role`; everything else runs as the
application role (row-level security on), in a child process of this script: a studio, a client with consent and
a photo set made through clients.services, then the set's 20 files stored the way the studio page and the upload
link store a request's files (clients.views._store_uploads: one transaction, `services.add_photo` for every file,
then `services.request_validation`, which enqueues the `intake.validate_set` job on commit, through the ORM broker,
or Redis with REDIS_URL). The worker is the product's own: `manage.py qcluster` as a subprocess with the app role's
DATABASE_URL and no Q_CLUSTER_NAME, i.e. the default cluster, the one `intake.validate_set` is registered on
(clients/jobs.py). Its start (to its first beacon, jobs/workers.py) is timed and excluded. Each e2e figure runs
from the upload call to the moment no photo of the set is PENDING (the database polled every 50 ms). The first set
after the worker started is reported apart (the worker process imports dlib and nudenet and loads their models
then); the figure is the median of the `--repeat` sets after it. Baseline: the same span in-process, the same
upload and then `run_job` in the child (models loaded beforehand), on the same database as the same role, its task
sent to a queue no worker serves (and purged). In-process and worker sets are interleaved in pairs whose order
alternates; the ratio is the median of the pairs' ratios. The worker is stopped with SIGTERM to the qcluster process,
then SIGKILL to its process group after a 10 s grace.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.face_fixtures import build_set  # noqa: E402  (../shared beside the project, or beside its origin)


def baseline(paths: list[Path]) -> float:
    from PIL import Image

    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        rgb.thumbnail((512, 512))
    return time.perf_counter() - start


def setup_django(workdir: Path) -> None:
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_saas.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def project_way(paths: list[Path]) -> tuple[float, dict]:
    """Wall seconds of the validation job, and its result plus the process's CPU seconds (both threads)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clients import services
    from jobs.models import Job
    from jobs.tasks import run_job
    from tenants.context import tenant_context
    from tenants.models import Studio

    studio = Studio.objects.create(name="Bench", slug=f"bench-{time.monotonic_ns()}")
    with tenant_context(studio):
        client = services.create_client(name="Bench client", created_by=None)
        services.record_consent(
            client=client, consent_text=services.current_consent_text(), method="staff", ip="127.0.0.1"
        )
        photo_set = services.create_photo_set(client=client, created_by=None)
        for path in paths:
            upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")
            services.add_photo(photo_set=photo_set, upload=upload, source="studio")
        job = services.request_validation(photo_set=photo_set)
    start, cpu_start = time.perf_counter(), time.process_time()
    outcome = run_job(job.pk, studio.pk)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    with tenant_context(studio):
        job = Job.objects.get(pk=job.pk)
    if outcome != "succeeded":
        raise SystemExit(f"the validation job ended {outcome}: {job.error}")
    return elapsed, {**(job.result or {}), "cpu_seconds": round(cpu, 2)}


DEFAULT_E2E_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/studio_bench_intake"
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.05
SET_TIMEOUT_SECONDS = 300.0
WORKER_START_TIMEOUT_SECONDS = 120.0
UNSERVED_QUEUE_SUFFIX = "-bench-intake-in-process"  # the in-process runs' tasks go where no worker listens


def ensure_database(owner_url: str) -> str | None:
    """Create the bench database once; None when it is there, else why PostgreSQL can't be used."""
    import psycopg
    from psycopg import sql

    server_url, db_name = owner_url.rsplit("/", 1)
    try:
        with psycopg.connect(server_url + "/postgres", connect_timeout=3, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def app_role_url(owner_url: str, role: str) -> str:
    """The bench database's URL for the application role (no password: the local server trusts loopback)."""
    parts = urlsplit(owner_url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))


def django_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("Q_CLUSTER_NAME", "DATABASE_OWNER_URL")}
    env.update(DJANGO_SETTINGS_MODULE="studio_saas.settings", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def run_e2e(owner_url: str, workdir: Path, paths: list[Path], repeat: int, long_side: int | None) -> None:
    """Prepare the bench database as its owner (the project's migrate and create_app_role), then run the end-to-end
    measurement in a child process connected as the application role."""
    from django.conf import settings

    manage = str(ROOT / "manage.py")
    data_dir, media = workdir / "e2e-data", workdir / "e2e-media"
    owner_env = django_env(DATABASE_URL=owner_url, DATA_DIR=str(data_dir), MEDIA_ROOT=str(media))
    started = time.perf_counter()
    for command in (["migrate", "-v", "0", "--no-input"], ["create_app_role"]):
        done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, manage, *command], cwd=ROOT, env=owner_env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"manage.py {command[0]} on the bench database failed:\n{done.stdout}{done.stderr}")
    print(f"e2e: bench database migrated, app role ready in {time.perf_counter() - started:.1f} s", flush=True)
    (workdir / "e2e.json").write_text(json.dumps({"paths": [str(p) for p in paths], "long_side": long_side}))
    app_env = django_env(
        DATABASE_URL=app_role_url(owner_url, settings.DATABASE_APP_ROLE), DATA_DIR=str(data_dir), MEDIA_ROOT=str(media)
    )
    child = subprocess.run(  # noqa: S603 - this script, as the application role
        [sys.executable, str(Path(__file__).resolve()), "--e2e-child", str(workdir), "--repeat", str(repeat)],
        cwd=ROOT,
        env=app_env,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"the end-to-end run failed (exit status {child.returncode})")


def start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    """`manage.py qcluster` as the product starts its default worker (runall, the docs): this process's environment
    (the app role's DATABASE_URL, no Q_CLUSTER_NAME), in its own process group; output to `log_path`."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=django_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_worker(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM to the qcluster process (its sentinel stops its own workers; a SIGTERM to each of them as well, the
    whole group's, leaves django-q2 waiting past the grace), SIGKILL to whatever of its process group is left after
    STOP_GRACE_SECONDS; says how it went."""
    start = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = start + STOP_GRACE_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_SECONDS)
    while time.perf_counter() < deadline and _group_alive(proc.pid):
        time.sleep(0.1)
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed (SIGKILL) after a {STOP_GRACE_SECONDS:.0f} s grace"
    return f"stopped by SIGTERM in {time.perf_counter() - start:.1f} s"


def e2e_child(workdir: Path, repeat: int) -> None:
    """The end-to-end measurement, in a process connected as the application role (see the module's docstring)."""
    spec = json.loads((workdir / "e2e.json").read_text())
    paths = [Path(p) for p in spec["paths"]]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction
    from django.test import override_settings
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM

    from clients import services
    from clients.models import Photo, PhotoSet
    from clients.validation import analyse_photo, face_rules, intake_limits
    from jobs.models import Job
    from jobs.services import queue_name
    from jobs.tasks import run_job
    from jobs.workers import worker_status
    from tenants.context import tenant_context
    from tenants.models import Studio

    default_queue = queue_name(Job.Cluster.DEFAULT)
    unserved = default_queue + UNSERVED_QUEUE_SUFFIX
    studio = Studio.objects.create(name="Bench intake", slug=f"bench-intake-{time.time_ns()}")

    def new_set() -> tuple[PhotoSet, list[SimpleUploadedFile]]:
        client = services.create_client(name="Bench client", created_by=None)
        services.record_consent(
            client=client, consent_text=services.current_consent_text(), method="staff", ip="127.0.0.1"
        )
        files = [SimpleUploadedFile(p.name, p.read_bytes(), content_type="image/jpeg") for p in paths]
        return services.create_photo_set(client=client, created_by=None), files

    def upload(photo_set: PhotoSet, files: list[SimpleUploadedFile]) -> Job:
        """What the studio page and the upload link do with a request's files (clients.views._store_uploads)."""
        with transaction.atomic():
            for each in files:
                services.add_photo(photo_set=photo_set, upload=each, source="studio", original_name=each.name or "")
            return services.request_validation(photo_set=photo_set)

    def accepted(photo_set: PhotoSet) -> int:
        return Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).count()

    def in_process() -> dict[str, Any]:
        with tenant_context(studio):
            photo_set, files = new_set()
            start = time.perf_counter()
            with override_settings(Q_QUEUES={**settings.Q_QUEUES, Job.Cluster.DEFAULT: unserved}):
                job = upload(photo_set, files)
        uploaded = time.perf_counter()
        outcome = run_job(job.pk, studio.pk)
        end = time.perf_counter()
        get_broker(unserved).purge_queue()
        with tenant_context(studio):
            if outcome != "succeeded":
                raise SystemExit(f"the in-process validation job ended {outcome}: {Job.objects.get(pk=job.pk).error}")
            return {"total": end - start, "upload": uploaded - start, "job": end - uploaded, "ok": accepted(photo_set)}

    def through_worker(worker: subprocess.Popen[bytes]) -> dict[str, Any]:
        with tenant_context(studio):
            photo_set, files = new_set()
            start = time.perf_counter()
            job = upload(photo_set, files)  # committed: the task is in the broker
            uploaded, committed_at = time.perf_counter(), time.time()
            pending = Photo.objects.filter(photo_set=photo_set, status=Photo.Status.PENDING)
            while pending.exists():
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited with status {worker.returncode}")
                if time.perf_counter() - start > SET_TIMEOUT_SECONDS:
                    raise SystemExit(f"no verdict for every photo after {SET_TIMEOUT_SECONDS:.0f} s")
                time.sleep(POLL_SECONDS)
            end = time.perf_counter()
            job = Job.objects.get(pk=job.pk)
            claimed = job.started_at.timestamp() - committed_at if job.started_at else float("nan")
            return {"total": end - start, "upload": uploaded - start, "wait": claimed, "ok": accepted(photo_set)}

    start = time.perf_counter()
    analyse_photo(paths[0], limits=intake_limits(), rules=face_rules())  # the in-process side's models
    print(f"e2e: models loaded in this process in {time.perf_counter() - start:.1f} s", flush=True)

    get_broker(unserved).purge_queue()
    if isinstance(get_broker(default_queue), ORM):  # the bench database's own queue: nothing left from a killed run
        get_broker(default_queue).purge_queue()
    log_path = workdir / "worker.log"
    started = time.perf_counter()
    worker = start_worker(log_path)
    stopped = "not stopped"
    inproc: list[dict[str, Any]] = []
    e2e: list[dict[str, Any]] = []
    try:
        while not worker_status(Job.Cluster.DEFAULT).alive:
            if worker.poll() is not None or time.perf_counter() - started > WORKER_START_TIMEOUT_SECONDS:
                raise SystemExit(f"the worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(POLL_SECONDS)
        worker_start = time.perf_counter() - started
        first = through_worker(worker)
        print(
            f"e2e first set after the worker started: {first['total']:.2f} s from upload to the last verdict "
            f"(upload {first['upload']:.2f} s, queued {first['wait']:.2f} s; the worker imports and loads its "
            f"models here), accepted {first['ok']}/{len(paths)}",
            flush=True,
        )
        for run in range(repeat):
            order = ("in-process", "worker") if run % 2 == 0 else ("worker", "in-process")
            for side in order:
                if side == "worker":
                    e2e.append(through_worker(worker))
                else:
                    inproc.append(in_process())
            w, i = e2e[-1], inproc[-1]
            print(
                f"e2e pair {run + 1} ({' then '.join(order)}): worker {w['total']:.2f} s from upload to the last "
                f"verdict (upload {w['upload']:.2f} s, queued {w['wait']:.2f} s), accepted {w['ok']}/{len(paths)} | "
                f"in-process {i['total']:.2f} s (upload {i['upload']:.2f} s + job {i['job']:.2f} s), "
                f"accepted {i['ok']}/{len(paths)}",
                flush=True,
            )
    finally:
        stopped = stop_worker(worker)
        get_broker(unserved).purge_queue()
    size_note = f" ({spec['long_side']} px long side)" if spec.get("long_side") else ""
    total = statistics.median(r["total"] for r in e2e)
    base = statistics.median(r["total"] for r in inproc)
    queued = statistics.median(r["wait"] for r in e2e)
    ratio = statistics.median(w["total"] / i["total"] for w, i in zip(e2e, inproc, strict=True))
    print(
        f"bench/intake e2e: {len(paths)} photos{size_note} through a real worker on PostgreSQL: {total:.2f} s from "
        f"upload to the last verdict ({total / len(paths):.3f} s/photo; worker start {worker_start:.1f} s excluded; "
        f"median of {repeat} sets after a first one of {first['total']:.2f} s) | in-process {base:.2f} s "
        f"(same upload and job, same database and role) | ratio x{ratio:.2f} (median of the pairs') | "
        f"queued {queued:.2f} s | worker {stopped} | load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-side", type=int, default=None, help="resize every photo to this longer side")
    parser.add_argument(
        "--e2e",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also through a real worker on PostgreSQL (default: when PostgreSQL answers)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_INTAKE_DATABASE_URL", DEFAULT_E2E_DATABASE_URL),
        help="the e2e bench database, as its owner (created once)",
    )
    parser.add_argument("--e2e-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        e2e_child(Path(args.e2e_child), args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        workdir = Path(tmp)
        (workdir / "set").mkdir()
        paths = build_set(workdir / "set", args.long_side)
        setup_django(workdir)

        from clients.validation import analyse_photo, face_rules, intake_limits

        start = time.perf_counter()
        analyse_photo(paths[0], limits=intake_limits(), rules=face_rules())  # loads dlib and nudenet models
        warmup = time.perf_counter() - start

        ours, base, cpus, result = [], [], [], {}
        for run in range(args.repeat):
            base.append(baseline(paths))
            elapsed, result = project_way(paths)
            ours.append(elapsed)
            cpus.append(result.pop("cpu_seconds"))
            print(
                f"run {run + 1}: validation {elapsed:.2f} s ({elapsed / len(paths):.3f} s/photo), "
                f"Pillow decode+resize {base[-1]:.2f} s ({base[-1] / len(paths) * 1000:.1f} ms/photo), "
                f"verdicts {result}"
            )
        per_photo = statistics.median(ours) / len(paths)
        size_note = f" ({args.long_side} px long side)" if args.long_side else ""
        base_per_photo = statistics.median(base) / len(paths)
        print(
            f"bench/intake: {len(paths)} photos{size_note}, {os.cpu_count()} cores, models loaded in {warmup:.1f} s | "
            f"validation {per_photo:.3f} s/photo (target <= 0.25) | Pillow decode+resize "
            f"{base_per_photo * 1000:.1f} ms/photo | ratio x{per_photo / base_per_photo:.1f} | "
            f"CPU {statistics.median(cpus) / len(paths):.3f} s/photo | load {os.getloadavg()[0]:.1f} | "
            f"accepted {result.get('accepted')}/{len(paths)}",
            flush=True,
        )
        if args.e2e is False:
            return
        problem = ensure_database(args.database_url)
        if problem is not None:
            if args.e2e:
                raise SystemExit(f"--e2e: PostgreSQL at {args.database_url} can't be used ({problem})")
            print(f"bench/intake e2e: skipped, PostgreSQL at {args.database_url} can't be used ({problem})")
            return
        run_e2e(args.database_url, workdir, paths, args.repeat, args.long_side)


if __name__ == "__main__":
    main()
