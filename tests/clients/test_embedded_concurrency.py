"""The embedded default holds concurrent work: SQLite (WAL, IMMEDIATE transactions, a busy timeout) under the
real `runall` processes, with real concurrency and no mocked lock.

The studio sends 20 photos 3 at a time (the set page's uploader does the same: 3 requests at once), a phone
sends 12 through the self-upload link at the same time, 2 at a time, a browser polls the set's status every few
hundred milliseconds, and the default worker validates while all of it goes on. Every answer is below 500,
every photo is stored, and once the uploads stop the worker finishes: no job is left queued or running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.embedded_site import EmbeddedSite, embedded_site
from tests.face_fixtures import FACES, build_set

pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason="needs the shared face photos")

SETUP = """
import json
from clients import services
from clients.models import UploadLink
from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.models import Studio
studio = Studio.objects.get(slug="demo")
with tenant_context(studio):
    client = services.create_client(name="Ada Client", email="ada@example.com", created_by=None)
    photo_set = services.create_photo_set(client=client, created_by=None)
    link = services.create_upload_link(photo_set=photo_set, created_by=None)
    _, key = create_api_key(name="concurrency test", created_by=None)
print(json.dumps({"client": client.pk, "set": photo_set.pk, "link": link.token, "key": key}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSite]:
    with embedded_site(tmp_path_factory.mktemp("embedded") / "var") as running:
        yield running


def _in_parallel(jobs: list[Callable[[], httpx.Response]], workers: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def test_uploads_from_the_studio_and_a_phone_while_the_worker_validates(site: EmbeddedSite, tmp_path: Path) -> None:
    ids = json.loads(site.shell(SETUP).strip().splitlines()[-1])
    studio_dir, phone_dir = tmp_path / "studio", tmp_path / "phone"
    studio_dir.mkdir()
    phone_dir.mkdir()
    studio_photos = build_set(studio_dir)
    phone_photos = build_set(phone_dir, long_side=1600)[:12]
    demo = f"{site.base}/s/demo"
    photos_url = f"{demo}/api/clients/{ids['client']}/photo-sets/{ids['set']}/photos/"
    link_url = f"{demo}/u/{ids['link']}/"
    api = httpx.Client(headers={"Authorization": f"Api-Key {ids['key']}"}, timeout=120)
    phone = httpx.Client(timeout=120, headers={"Accept": "application/json"})

    # The client agrees on the phone first (the studio has no consent on record): the page's own form.
    page = phone.get(link_url)
    assert page.status_code == 200, page.text
    token = phone.cookies.get("csrftoken")
    text_id = page.text.split('name="consent_text_id" value="', 1)[1].split('"', 1)[0]
    agreed = phone.post(
        link_url,
        data={"agree": "on", "consent_text_id": text_id, "csrfmiddlewaretoken": token},
        headers={"Referer": link_url},
    )
    assert agreed.status_code in (200, 302), agreed.text

    def studio_upload(path: Path) -> Callable[[], httpx.Response]:
        return lambda: api.post(photos_url, files={"files": (path.name, path.read_bytes(), "image/jpeg")})

    def phone_upload(path: Path) -> Callable[[], httpx.Response]:
        return lambda: phone.post(
            f"{link_url}upload/",
            files={"files": (path.name, path.read_bytes(), "image/jpeg")},
            headers={"X-Requested-With": "XMLHttpRequest"},
        )

    polls: list[int] = []
    stop = threading.Event()

    def poll() -> None:  # what a browser on the set's page and the phone's page do meanwhile
        while not stop.is_set():
            polls.append(api.get(photos_url).status_code)
            polls.append(phone.get(f"{link_url}photos/").status_code)
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with ThreadPoolExecutor(max_workers=2) as pool:
        studio_side = pool.submit(_in_parallel, [studio_upload(p) for p in studio_photos], 3)
        phone_side = pool.submit(_in_parallel, [phone_upload(p) for p in phone_photos], 2)
        answers = studio_side.result() + phone_side.result()
    stop.set()
    poller.join(timeout=30)

    assert [a.status_code for a in answers if a.status_code >= 300] == [], [
        a.text for a in answers if a.status_code >= 300
    ]
    assert polls and max(polls) < 500, polls
    assert not site.server_errors(), "\n".join(site.server_errors())

    # The worker finishes what was queued: every photo gets its verdict, no job waits for ever.
    deadline = time.monotonic() + 300
    while True:
        photos = api.get(photos_url, params={"limit": 100}).json()
        rows = photos.get("results", photos) if isinstance(photos, dict) else photos
        states = site.job_states()
        if (
            rows
            and all(row["status"] != "pending" for row in rows)
            and not states.get("queued")
            and not states.get("running")
        ):
            break
        assert time.monotonic() < deadline, (states, [row["status"] for row in rows])
        time.sleep(1)
    assert len(rows) == 32
    assert sum(row["status"] == "accepted" for row in rows) >= 20
    assert states.get("failed", 0) == 0, states
    assert not site.server_errors(), "\n".join(site.server_errors())


CLAIM = """
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Studio
studio = Studio.objects.get(slug="demo")
with tenant_context(studio):
    job = Job.objects.create(kind="demo.countdown", payload={"steps": 1, "delay": 0})
print(job.pk, studio.pk)
"""


def test_a_claim_that_meets_a_locked_database_waits_and_runs_the_job(site: EmbeddedSite) -> None:
    """Another process holds SQLite's write lock longer than the worker's busy timeout: the claim is tried again
    after a pause instead of failing (a failed claim would leave the job queued with no message to run it)."""
    import os
    import sqlite3
    import subprocess
    import sys

    from tests.embedded_site import ROOT, site_env

    job_id, studio_id = site.shell(CLAIM).split()[-2:]
    holder = sqlite3.connect(site.data_dir / "db.sqlite3", timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock
    env = {**site_env(site.data_dir), "SQLITE_BUSY_TIMEOUT_SECONDS": "0.3"}
    worker = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "-c",
            f"from jobs.tasks import run_job; print(run_job({job_id}, {studio_id}))",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # The lock is held until the worker says it met it and will try again; then it is released.
    lines: list[str] = []
    assert worker.stdout is not None
    deadline = time.monotonic() + 120
    while "job_claim_retry" not in "".join(lines):
        line = worker.stdout.readline()
        assert line or worker.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    holder.execute("COMMIT")
    holder.close()
    rest, _ = worker.communicate(timeout=120)
    output = "".join(lines) + rest
    assert worker.returncode == 0, output
    assert "job_claim_retry" in output and output.strip().endswith("succeeded"), output
    assert os.environ.get("SQLITE_BUSY_TIMEOUT_SECONDS") is None  # the site itself keeps its 30 s
