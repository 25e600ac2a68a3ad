"""Clients, consent, photo sets, upload links, request_validation and the readiness selector."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients import selectors, services
from clients.consent import DEFAULT_CONSENT_TEXT
from clients.models import Client, ConsentText, Photo, PhotoSet, UploadLink
from jobs.models import Job
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, upload

pytestmark = pytest.mark.django_db


def test_create_client_and_refuse_a_blank_name(tenant_a):
    with tenant_context(tenant_a.studio):
        client = services.create_client(name="  Bo  ", email=" bo@example.com ", created_by=tenant_a.owner)
        assert (client.name, client.email, client.created_by, client.studio_id) == (
            "Bo",
            "bo@example.com",
            tenant_a.owner,
            tenant_a.studio.pk,
        )
        assert not client.has_consent
        with pytest.raises(services.IntakeError) as exc:
            services.create_client(name="   ", created_by=None)
        assert exc.value.status == 400


def test_consent_text_is_versioned_per_studio(two_tenants):
    a, b = two_tenants
    with tenant_context(a.studio):
        v1 = services.current_consent_text()
        assert (v1.version, v1.body) == (1, DEFAULT_CONSENT_TEXT)
        assert services.current_consent_text().pk == v1.pk
        v2 = services.publish_consent_text(body="New words.", created_by=a.owner)
        assert v2.version == 2 and services.current_consent_text().pk == v2.pk
        assert services.publish_consent_text(body="New words.", created_by=a.owner).pk == v2.pk  # unchanged
        with pytest.raises(services.IntakeError):
            services.publish_consent_text(body="  ", created_by=a.owner)
    with tenant_context(b.studio):
        assert services.current_consent_text().version == 1  # B's own history


def test_the_default_consent_text_says_the_face_description_is_kept(two_tenants):
    """Finding 12 (issue 13): the default consent text says that a numerical description of the face is kept,
    encrypted, with the digital double, what it is used for, and that it is deleted with the double. A studio's
    version already stored keeps its words."""
    a, b = two_tenants
    text = DEFAULT_CONSENT_TEXT
    assert "numerical description of my face" in text and "128 numbers" in text
    assert "encrypted" in text and "biometric template" in text
    assert "score how closely later portraits resemble me" in text
    assert "deleted together with my digital double" in text
    with tenant_context(a.studio):
        assert services.current_consent_text().body == text  # a new studio's first version
        stored = services.current_consent_text()
        stored.body = "The words a client agreed to earlier."
        stored.save(update_fields=["body"])
        assert services.current_consent_text().body == "The words a client agreed to earlier."


def test_record_consent(tenant_a):
    with tenant_context(tenant_a.studio):
        client = services.create_client(name="C", created_by=None)
        text = services.current_consent_text()
        services.record_consent(client=client, consent_text=text, method="self", ip="198.51.100.7")
        client = Client.objects.get(pk=client.pk)
        assert client.has_consent and client.consent_method == "self" and client.consent_ip == "198.51.100.7"
        assert client.consent_collected_by is None and client.consent_text == text
        with pytest.raises(services.IntakeError):
            services.record_consent(client=client, consent_text=text, method="telepathy", ip=None)


def test_no_photo_without_consent_and_none_in_a_closed_set(tenant_a, photo_set):
    with tenant_context(tenant_a.studio):
        stranger = services.create_client(name="No consent", created_by=None)
        unconsented = services.create_photo_set(client=stranger, created_by=None)
        assert unconsented.retention_until > timezone.now() + timedelta(days=6)
        with pytest.raises(services.IntakeError) as exc:
            services.add_photo(photo_set=unconsented, upload=upload(b"x"), source="studio")
        assert exc.value.status == 409 and "consent" in exc.value.message
        assert not Photo.objects.filter(photo_set=unconsented).exists()
        PhotoSet.objects.filter(pk=photo_set.pk).update(status=PhotoSet.Status.TRAINED)
        photo_set.refresh_from_db()
        with pytest.raises(services.IntakeError) as exc:
            services.add_photo(photo_set=photo_set, upload=upload(b"x"), source="studio")
        assert exc.value.status == 409


def test_add_photo_stores_privately_or_records_a_refusal(tenant_a, photo_set, private_storage):
    with tenant_context(tenant_a.studio):
        photo = services.add_photo(
            photo_set=photo_set, upload=upload(fixture_bytes("person_a_01.jpg"), "../../Ada's face.JPG"), source="api"
        )
        assert photo.status == Photo.Status.PENDING and photo.original_name == "Ada's face.JPG"
        assert photo.original.name.startswith(f"intake/{tenant_a.studio.pk}/{photo_set.pk}/original/")
        assert "Ada" not in photo.original.name and photo.original.storage.exists(photo.original.name)
        assert (private_storage / photo.original.name).is_file()
        assert photo.detected_format == "JPEG" and photo.size_bytes > 0
        refused = services.add_photo(
            photo_set=photo_set,
            upload=None,
            source="self",
            original_name="huge.heic",
            rejection=("too_large", "This file is larger than 25 MB: upload a smaller copy of the photo."),
        )
        assert (refused.status, refused.reason_code, refused.original_name) == (
            Photo.Status.REJECTED,
            "too_large",
            "huge.heic",
        )
        assert not refused.original and refused.validated_at is not None
        with pytest.raises(ValueError):
            services.add_photo(photo_set=photo_set, upload=upload(b"x"), source="fax")


def test_request_validation_enqueues_once_on_commit(
    tenant_a, photo_set, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: sent.append(args))
    with tenant_context(tenant_a.studio):
        with django_capture_on_commit_callbacks(execute=True):
            job = services.request_validation(photo_set=photo_set, user=tenant_a.owner)
        assert (job.kind, job.cluster, job.payload) == (
            "intake.validate_set",
            "default",
            {"photo_set_id": photo_set.pk},
        )
        assert sent == [("jobs.tasks.run_job", job.pk, tenant_a.studio.pk)]
        again = services.request_validation(photo_set=photo_set)
        assert again.pk == job.pk and len(sent) == 1  # still queued: the same job
        Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED)
        with django_capture_on_commit_callbacks(execute=True):
            third = services.request_validation(photo_set=photo_set)
        assert third.pk != job.pk and len(sent) == 2
        assert PhotoSet.objects.get(pk=photo_set.pk).validation_job_id == third.pk


def test_upload_links(two_tenants, photo_set):
    a, b = two_tenants
    with tenant_context(a.studio):
        link = services.create_upload_link(photo_set=photo_set, created_by=a.owner)
        assert timedelta(days=6) < link.expires_at - timezone.now() <= timedelta(days=7)
        assert len(link.token) >= 32
        assert services.resolve_upload_link(token=link.token).pk == link.pk
        with pytest.raises(services.IntakeError):
            services.create_upload_link(photo_set=photo_set, created_by=a.owner, days=0)
        with pytest.raises(services.UploadLinkError) as exc:
            services.resolve_upload_link(token="nope-not-a-token")
        assert exc.value.status == 404
        expired = services.create_upload_link(photo_set=photo_set, created_by=a.owner, days=1)
        UploadLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(services.UploadLinkError) as exc:
            services.resolve_upload_link(token=expired.token)
        assert exc.value.status == 410 and "expired" in exc.value.message
        services.revoke_upload_link(link=link)
        with pytest.raises(services.UploadLinkError) as exc:
            services.resolve_upload_link(token=link.token)
        assert exc.value.status == 410
    fresh_token = None
    with tenant_context(a.studio):
        fresh_token = services.create_upload_link(photo_set=photo_set, created_by=a.owner).token
    with tenant_context(b.studio), pytest.raises(services.UploadLinkError) as exc:
        services.resolve_upload_link(token=fresh_token)  # studio A's link is unknown in studio B
    assert exc.value.status == 404


def _photos(photo_set, accepted=0, rejected=(), pending=0):
    rows = [Photo(photo_set=photo_set, status=Photo.Status.ACCEPTED) for _ in range(accepted)]
    rows += [Photo(photo_set=photo_set, status=Photo.Status.REJECTED, reason_code=code) for code in rejected]
    rows += [Photo(photo_set=photo_set) for _ in range(pending)]
    Photo.objects.bulk_create(rows)


def test_readiness_levels_and_hints(tenant_a, photo_set, django_assert_max_num_queries):
    with tenant_context(tenant_a.studio):
        empty = selectors.readiness(photo_set=photo_set)
        assert (empty.accepted, empty.level, empty.can_train, empty.percent) == (0, "not_enough", False, 0)
        assert any("Add at least 10 more photos" in h for h in empty.hints)
        _photos(
            photo_set, accepted=7, rejected=["blurry", "blurry", "badly_exposed", "badly_exposed", "near_duplicate"]
        )
        with django_assert_max_num_queries(1):
            ready = selectors.readiness(photo_set=photo_set)
        assert (ready.accepted, ready.rejected, ready.pending, ready.missing) == (7, 5, 0, 3)
        text = " ".join(ready.hints)
        assert "add at least 3 more photos" in text.lower()
        assert "hold the camera steady" in text and "more even light" in text and "other angles" in text
        _photos(photo_set, accepted=5, pending=1)
        ready = selectors.readiness(photo_set=photo_set)
        assert (ready.level, ready.can_train, ready.percent) == ("enough", False, 60)  # one still pending
        assert any("still being checked" in h for h in ready.hints)
        Photo.objects.filter(photo_set=photo_set, status=Photo.Status.PENDING).update(status=Photo.Status.ACCEPTED)
        ready = selectors.readiness(photo_set=photo_set)
        assert ready.can_train and any("7 more photos from other angles" in h for h in ready.hints)
        _photos(photo_set, accepted=8)
        ready = selectors.readiness(photo_set=photo_set)
        assert (ready.level, ready.percent, ready.can_train) == ("recommended", 100, True)


def test_one_blurry_photo_is_no_pattern(tenant_a, photo_set):
    with tenant_context(tenant_a.studio):
        _photos(photo_set, accepted=12, rejected=["blurry", "different_person"])
        hints = " ".join(selectors.readiness(photo_set=photo_set).hints)
        assert "steady" not in hints and "different person" in hints


def test_lists_are_scoped(two_tenants, consented_client):
    a, b = two_tenants
    with tenant_context(b.studio):
        services.create_client(name="B's client", created_by=None)
    with tenant_context(a.studio):
        services.create_photo_set(client=consented_client, created_by=None)
        names = [(c.name, c.photo_set_count) for c in selectors.clients_list()]
        assert names == [("Ada Client", 1)]
        assert ConsentText.objects.count() == 1
