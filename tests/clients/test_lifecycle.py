"""The privacy lifecycle: files really leave storage after training and after retention, receipts are written
(with no personal data), a client can be erased or exported."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from clients import services
from clients.apps import RETENTION_FUNC, RETENTION_SCHEDULE_NAME
from clients.models import Client, DeletionReceipt, Photo, PhotoSet, UploadLink
from clients.tasks import sweep_retention
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, reload, upload

pytestmark = pytest.mark.django_db


def _files(photo: Photo) -> dict[str, bool]:
    return {
        field: bool(getattr(photo, field).name) and getattr(photo, field).storage.exists(getattr(photo, field).name)
        for field in ("original", "thumbnail", "face_crop")
    }


@pytest.fixture
def validated(tenant_a, photo_set, add, validate):
    """Two accepted photos and a rejected one, with their files in storage."""
    photos = [add(fixture_bytes(n), n) for n in ("person_a_01.jpg", "person_a_03.jpg", "two_people.jpg")]
    validate()
    photos = [reload(tenant_a, p) for p in photos]
    assert [_files(p) for p in photos] == [
        {"original": True, "thumbnail": True, "face_crop": True},
        {"original": True, "thumbnail": True, "face_crop": True},
        {"original": True, "thumbnail": True, "face_crop": False},
    ]
    return photos


def test_training_hook_deletes_originals_and_face_crops_from_storage(tenant_a, photo_set, validated):
    stored_names = [p.original.name for p in validated] + [p.face_crop.name for p in validated if p.face_crop]
    storage = validated[0].original.storage
    with tenant_context(tenant_a.studio):
        receipt = services.purge_photo_set_files(
            photo_set=photo_set, kind="after_training", performed_by=tenant_a.owner
        )
    assert not any(storage.exists(name) for name in stored_names)
    for photo in validated:
        photo = reload(tenant_a, photo)
        assert _files(photo) == {"original": False, "thumbnail": True, "face_crop": False}
        assert photo.files_deleted_at is not None and not photo.original.name
    photo_set = reload(tenant_a, photo_set)
    assert photo_set.status == PhotoSet.Status.TRAINED and photo_set.purged_at is not None
    assert receipt.kind == "after_training" and receipt.performed_by == tenant_a.owner
    assert receipt.counts == {"photos": 3, "originals": 3, "face_crops": 2}
    assert (receipt.client_ref, receipt.photo_set_ref) == (photo_set.client_id, photo_set.pk)
    with tenant_context(tenant_a.studio), pytest.raises(services.IntakeError):
        services.add_photo(photo_set=photo_set, upload=upload(b"x"), source="studio")


def test_retention_sweep_purges_expired_sets_in_every_studio(two_tenants, photo_set, validated):
    a, b = two_tenants
    with tenant_context(a.studio):
        PhotoSet.objects.filter(pk=photo_set.pk).update(retention_until=timezone.now() - timedelta(minutes=1))
        fresh = services.create_photo_set(client=photo_set.client, created_by=None)
        pending = services.add_photo(photo_set=fresh, upload=upload(fixture_bytes("person_a_02.jpg")), source="studio")
    with tenant_context(b.studio):
        b_client = services.create_client(name="B client", created_by=None)
        services.record_consent(client=b_client, consent_text=services.current_consent_text(), method="staff", ip=None)
        b_set = services.create_photo_set(client=b_client, created_by=None)
        b_photo = services.add_photo(photo_set=b_set, upload=upload(fixture_bytes("person_b_01.jpg")), source="studio")
        PhotoSet.objects.filter(pk=b_set.pk).update(retention_until=timezone.now() - timedelta(days=1))
    assert sweep_retention() == {"purged": 2, "failed": 0}
    assert all(not _files(reload(a, p))["original"] and not _files(reload(a, p))["face_crop"] for p in validated)
    assert reload(a, photo_set).status == PhotoSet.Status.PURGED
    assert _files(reload(b, b_photo))["original"] is False
    b_photo = reload(b, b_photo)
    assert (b_photo.status, b_photo.reason_code) == (Photo.Status.REJECTED, "deleted")
    assert _files(reload(a, pending))["original"] is True  # not due yet
    assert reload(a, fresh).status == PhotoSet.Status.COLLECTING
    with tenant_context(a.studio):
        assert list(DeletionReceipt.objects.values_list("kind", "photo_set_ref")) == [("retention", photo_set.pk)]
    with tenant_context(b.studio):
        assert list(DeletionReceipt.objects.values_list("kind", "photo_set_ref")) == [("retention", b_set.pk)]
    assert sweep_retention() == {"purged": 0, "failed": 0}  # nothing twice


def test_retention_schedule_is_registered_after_migrate():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name=RETENTION_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type) == (RETENTION_FUNC, Schedule.HOURLY)


def test_erase_client_removes_everything_and_leaves_an_anonymous_receipt(tenant_a, photo_set, validated):
    calls = []

    @services.register_client_erasure_step("test_doubles")
    def erase_doubles(client):
        calls.append(client.pk)
        return {"doubles": 2}

    try:
        with tenant_context(tenant_a.studio):
            services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)
            client = photo_set.client
            names = [getattr(p, f).name for p in validated for f in ("original", "thumbnail", "face_crop")]
            storage = validated[0].original.storage
            receipt = services.erase_client(client=client, performed_by=tenant_a.owner)
            assert not Client.objects.filter(pk=client.pk).exists()
            assert not PhotoSet.objects.filter(pk=photo_set.pk).exists()
            assert not Photo.objects.filter(pk__in=[p.pk for p in validated]).exists()
            assert not UploadLink.objects.exists()
    finally:
        services.unregister_client_steps("test_doubles")
    assert calls == [client.pk]
    assert not any(storage.exists(name) for name in names if name)
    assert receipt.kind == "client_erasure" and receipt.client_ref == client.pk
    assert receipt.counts == {
        "doubles": 2,
        "clients": 1,
        "photo_sets": 1,
        "photos": 3,
        "files": 8,
        "upload_links": 1,
    }
    dump = json.dumps({f.attname: str(getattr(receipt, f.attname)) for f in DeletionReceipt._meta.concrete_fields})
    assert "Ada" not in dump and "ada@example.com" not in dump and "203.0.113.5" not in dump


def test_export_client_zip(tenant_a, photo_set, validated):
    with tenant_context(tenant_a.studio):
        name, handle = services.export_client_zip(client=photo_set.client)
    assert name == f"client-{photo_set.client_id}-export.zip"
    assert not isinstance(handle, bytes) and hasattr(handle, "fileno")  # a temporary file, not bytes in memory
    with handle, zipfile.ZipFile(handle) as archive:
        details = json.loads(archive.read("client.json"))
        assert details["name"] == "Ada Client" and details["email"] == "ada@example.com"
        assert details["consent"]["text_version"] == 1 and details["consent"]["ip"] == "203.0.113.5"
        sets = json.loads(archive.read("photos.json"))
        photos = sets[0]["photos"]
        assert [p["status"] for p in photos] == ["accepted", "accepted", "rejected"]
        assert photos[2]["reason_code"] == "several_faces" and photos[2]["reason"]
        original = photos[0]["files"]["original"]
        assert archive.read(original) == fixture_bytes("person_a_01.jpg")
        assert set(photos[0]["files"]) == {"original", "thumbnail", "face_crop"}


def test_an_erasure_that_would_hit_a_protected_record_is_refused_before_anything_is_deleted(
    tenant_a, photo_set, validated, monkeypatch
):
    """Issue 13, finding 9: should any record protect a client's data (a financial record), erasure is a 409 that
    says which, checked before the first file is deleted (files can't come back), never a 500 halfway."""
    from django.db.models import ProtectedError
    from django.db.models.deletion import Collector

    from tenants.services import ActionRefused

    def protected(self, objs, *args, **kwargs):
        raise ProtectedError("protected", set(Client.objects.filter(pk=photo_set.client_id)))

    monkeypatch.setattr(Collector, "collect", protected)
    with tenant_context(tenant_a.studio):
        client = photo_set.client
        storage = validated[0].original.storage
        names = [p.original.name for p in validated]
        with pytest.raises(ActionRefused) as refused:
            services.erase_client(client=client, performed_by=tenant_a.owner)
        assert Client.objects.filter(pk=client.pk).exists()
    assert (refused.value.code, refused.value.status) == ("erasure_blocked", 409)
    assert "clients of theirs must be kept" in str(refused.value)
    assert all(storage.exists(name) for name in names)
