"""The intake's verdicts under a real race: a real worker validates the set while a stranger's photos arrive
(issue 13, finding 1). Transactional, so the worker (another process, as the application role, under row-level
security) sees what the test writes."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from clients import services
from clients.models import Photo, PhotoSet
from jobs.models import Job
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, jpeg_bytes, upload
from tests.face_fixtures import shots
from tests.jobs.worker_processes import start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _big_photo() -> bytes:
    """A 7,000 x 7,000 (49 MP) photo of the client: it keeps the validation job busy for seconds."""
    with Image.open(io.BytesIO(fixture_bytes("person_a_04.jpg"))) as image:
        return jpeg_bytes(image.convert("RGB").resize((7000, 7000)), quality=80)


def test_a_strangers_photos_arriving_mid_job_never_outvote_the_client(tenant_a, redis_broker, tmp_path):
    """Issue 13, finding 1: while a real worker's validation job is still busy (a 49 MP photo), a stranger's 6
    photos arrive. Before, the client's photos accepted in the first round counted as new in the second, the
    majority decided, and the client's photos flipped to "looks like a different person" while the stranger's
    were accepted. Now the client's photos stay accepted, the stranger's are rejected, and a poller that reads the
    photos all along never sees one go Accepted → Rejected."""
    studio = tenant_a.studio
    with tenant_context(studio):
        person = services.create_client(name="Ada", email="ada@example.com", created_by=tenant_a.owner)
        services.record_consent(
            client=person, consent_text=services.current_consent_text(), method="staff", ip="203.0.113.5"
        )
        photo_set = services.create_photo_set(client=person, created_by=tenant_a.owner)
        client_photos = [
            services.add_photo(photo_set=photo_set, upload=upload(fixture_bytes(n), n), source="studio")
            for n in ("person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg")
        ]
        services.add_photo(photo_set=photo_set, upload=upload(_big_photo(), "big.jpg"), source="studio")
        job = services.request_validation(photo_set=photo_set)

    history: dict[int, list[str]] = {}
    stop = threading.Event()

    def poll() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                with tenant_context(studio):
                    rows = list(Photo.objects.filter(photo_set_id=photo_set.pk).values_list("pk", "status"))
                for pk, status in rows:
                    seen = history.setdefault(pk, [])
                    if not seen or seen[-1] != status:
                        seen.append(status)
                time.sleep(0.05)
        finally:
            connection.close()

    poller = threading.Thread(target=poll, daemon=True)
    worker = start_worker(redis_broker, tmp_path / "worker.log")
    poller.start()
    strangers: list[Photo] = []
    try:

        def progress_message() -> str:
            with tenant_context(studio):
                return Job.objects.get(pk=job.pk).progress_message

        # Past the round's first look for pending photos: the stranger's photos make the next round.
        wait_for(lambda: progress_message().startswith("Checking photo 2 of"), worker=worker, what="the job")
        with tenant_context(studio):
            for name in ("person_b_01.jpg", "person_b_02.jpg"):
                for label, shot in list(shots(name).items())[:3]:
                    strangers.append(
                        services.add_photo(
                            photo_set=photo_set, upload=upload(jpeg_bytes(shot), f"{label}-{name}"), source="studio"
                        )
                    )
            services.request_validation(photo_set=photo_set)

        def settled() -> bool:
            with tenant_context(studio):
                pending = Photo.objects.filter(photo_set_id=photo_set.pk, status=Photo.Status.PENDING).exists()
                validation = PhotoSet.objects.select_related("validation_job").get(pk=photo_set.pk).validation_job
            return not pending and validation.is_terminal

        wait_for(settled, worker=worker, what="every photo's verdict")
    finally:
        stop.set()
        poller.join(timeout=10)
        stop_worker(worker)
    with tenant_context(studio):
        statuses = {p.pk: (p.status, p.reason_code) for p in Photo.objects.filter(photo_set_id=photo_set.pk)}
    assert [statuses[p.pk][0] for p in client_photos] == [Photo.Status.ACCEPTED] * 3, statuses
    assert [statuses[p.pk] for p in strangers] == [(Photo.Status.REJECTED, "different_person")] * 6, statuses
    for pk, seen in history.items():
        assert not ("accepted" in seen and "rejected" in seen[seen.index("accepted") :]), (pk, seen)
