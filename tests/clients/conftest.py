"""Fixtures for the intake: private storage in a temporary folder, a consented client with a photo set in
studio A (and one in studio B), face fixtures and the variants that make a 20-photo set."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from clients import services
from clients.models import Photo, PhotoSet
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.face_fixtures import FACES, shots
from tests.jobs.brokers import redis_broker  # noqa: F401  (a fixture: Redis broker, unique prefix)

PERSON_A = ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"]


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


def fixture_bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def variants(name: str) -> dict[str, bytes]:
    """Five different shots made from one fixture (tests.face_fixtures.shots), as JPEG bytes by file name."""
    return {f"{Path(name).stem}-{label}.jpg": jpeg_bytes(shot) for label, shot in shots(name).items()}


def twenty_photos() -> dict[str, bytes]:
    photos: dict[str, bytes] = {}
    for name in PERSON_A:
        photos.update(variants(name))
    return photos


@pytest.fixture
def consented_client(tenant_a: Any) -> Any:
    with tenant_context(tenant_a.studio):
        client = services.create_client(name="Ada Client", email="ada@example.com", created_by=tenant_a.owner)
        return services.record_consent(
            client=client,
            consent_text=services.current_consent_text(),
            method="staff",
            ip="203.0.113.5",
            collected_by=tenant_a.owner,
        )


@pytest.fixture
def photo_set(tenant_a: Any, consented_client: Any) -> PhotoSet:
    with tenant_context(tenant_a.studio):
        return services.create_photo_set(client=consented_client, created_by=tenant_a.owner)


@pytest.fixture
def add(tenant_a: Any, photo_set: PhotoSet) -> Callable[..., Photo]:
    def _add(data: bytes, name: str = "photo.jpg", target: PhotoSet | None = None) -> Photo:
        with tenant_context(tenant_a.studio):
            return services.add_photo(photo_set=target or photo_set, upload=upload(data, name), source="studio")

    return _add


@pytest.fixture
def validate(tenant_a: Any, photo_set: PhotoSet) -> Callable[..., Job]:
    """Request validation and run the job right here through run_job (no worker)."""

    def _validate(target: PhotoSet | None = None) -> Job:
        with tenant_context(tenant_a.studio):
            job = services.request_validation(photo_set=target or photo_set, user=tenant_a.owner)
        assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
        with tenant_context(tenant_a.studio):
            return Job.objects.get(pk=job.pk)

    return _validate


def reload(tenant: Any, obj: Any) -> Any:
    with tenant_context(tenant.studio):
        return type(obj).objects.get(pk=obj.pk)


from tests.jobs.conftest import enqueued  # noqa: E402, F401  (a fixture: the jobs' enqueue recorder)
