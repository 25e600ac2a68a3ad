"""Instant portraits (issue 17, generation/instant.py): portraits from a photo set's accepted photos before any
double is trained, through the real job on the tiny model (CPU, 2 steps) and the demo's tiny IP-Adapter built by
engine.checkpoints.build_tiny_ip_adapter and loaded by diffusers' own load_ip_adapter. The photo set's card, the
API, likeness against the set's photos, the refusals (photos purged, at the start and inside the job, with the race
of a purge while rendering; no adapter configured; a non-commercial adapter; no consent; no accepted photo),
export and erasure (files included)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from clients import services as intake
from clients.models import DeletionReceipt, Photo, PhotoSet
from generation import instant
from generation.models import InstantPortrait
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.clients.conftest import upload, variants
from tests.conftest import Tenant
from tests.face_fixtures import FACES
from tests.generation.runs_support import run_settings_fixture, tiny_engine_fixture  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not FACES.is_dir(), reason=f"face fixtures missing at {FACES}"),
]

NON_COMMERCIAL = {"key": "ip-adapter-faceid", "source": "h94/IP-Adapter-FaceID", "weight_name": "x.bin"}


@pytest.fixture(autouse=True)
def instant_settings(settings: Any, run_settings: Path) -> Path:
    """The tiny model on the CPU, the demo's tiny adapter (built under ENGINE_MODELS_DIR on first use), 2 steps."""
    settings.ENGINE_INSTANT_ADAPTER = "demo"
    settings.ENGINE_INSTANT_STEPS = 2
    settings.ENGINE_INSTANT_PROMPT = "studio portrait photo of {subject}"
    return run_settings


def _client(tenant: Tenant, *, consent: bool = True) -> Any:
    with tenant_context(tenant.studio):
        client = intake.create_client(name="Ada Client", email="ada@example.com", created_by=tenant.owner)
        if consent:
            intake.record_consent(
                client=client,
                consent_text=intake.current_consent_text(),
                method="staff",
                ip="203.0.113.5",
                collected_by=tenant.owner,
            )
        return client


def _validated_set(tenant: Tenant) -> PhotoSet:
    """A consented client's set of three shots of person A, validated by the real intake job."""
    client = _client(tenant)
    with tenant_context(tenant.studio):
        photo_set = intake.create_photo_set(client=client, created_by=tenant.owner)
        for name, data in list(variants("person_a_01.jpg").items())[:3]:
            intake.add_photo(photo_set=photo_set, upload=upload(data, name), source="studio")
        job = intake.request_validation(photo_set=photo_set, user=tenant.owner)
    assert run_job(job.pk, tenant.studio.pk) == "succeeded"
    with tenant_context(tenant.studio):
        assert Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).count() >= 1
    return photo_set


def _accepted_set(tenant: Tenant, names: tuple[str, ...] = ("person_a_01.jpg",), *, consent: bool = True) -> PhotoSet:
    """A set whose photos are marked accepted directly (no validation job): for the refusals."""
    client = _client(tenant, consent=consent)
    with tenant_context(tenant.studio):
        photo_set = intake.create_photo_set(client=client, created_by=tenant.owner)
        for name in names:
            photo = Photo(photo_set=photo_set, status=Photo.Status.ACCEPTED, original_name=name)
            photo.original.save("original.jpg", ContentFile((FACES / name).read_bytes()), save=False)
            photo.save()
        return photo_set


def _start(tenant: Tenant, photo_set: PhotoSet, images: int = 2) -> Job:
    with tenant_context(tenant.studio):
        return instant.start_instant(photo_set=photo_set, images=images, user=tenant.owner)


def _job(tenant: Tenant, job: Job) -> Job:
    with tenant_context(tenant.studio):
        return Job.objects.get(pk=job.pk)


def _rows(tenant: Tenant, photo_set: PhotoSet) -> list[InstantPortrait]:
    with tenant_context(tenant.studio):
        return list(InstantPortrait.objects.filter(photo_set_id=photo_set.pk).order_by("rank"))


def _purge(tenant: Tenant, photo_set: PhotoSet) -> None:
    with tenant_context(tenant.studio):
        intake.purge_photo_set_files(photo_set=photo_set, kind="retention")


# --- the whole life ---------------------------------------------------------------------------------------------


def test_instant_portraits_from_a_validated_set_before_any_double(client: Any, tenant_a: Tenant) -> None:
    """The set's card offers them; the real job renders them on the tiny model through the demo's tiny adapter;
    the card shows progress, then the thumbnails marked Instant with their likeness; the API lists them; the
    export carries them; erasing the client deletes rows and files."""
    photo_set = _validated_set(tenant_a)
    prefix = tenant_a.prefix
    page_url = f"{prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/"
    client.force_login(tenant_a.owner)

    html = client.get(page_url).content.decode()
    assert 'id="instant-title">Instant portraits</h2>' in html and "before a digital double is trained" in html
    assert f'action="{prefix}/doubles/instant/{photo_set.pk}/"' in html
    assert '<label for="id_instant_images">Portraits</label>' in html and "No instant portrait yet." in html
    assert 'id="instant-start">Make instant portraits</button>' in html

    response = client.post(f"{prefix}/doubles/instant/{photo_set.pk}/", {"images": "2"})
    assert response.status_code == 302 and response["Location"].endswith(f"/sets/{photo_set.pk}/#instant")
    with tenant_context(tenant_a.studio):
        job = Job.objects.get(kind="portraits.instant")
        assert not DoubleExists.any(photo_set)
    assert (job.cluster, job.payload["photo_set_id"], job.payload["images"]) == ("gpu", photo_set.pk, 2)
    assert len(job.payload["seeds"]) == 2 and job.payload["base_model"] == "tiny-sd15"

    # While it is queued the card shows its progress and polls its own fragment.
    html = client.get(page_url).content.decode()
    assert f'id="job-{job.pk}-progress"' in html and f'hx-get="{prefix}/doubles/instant/{photo_set.pk}/status/"' in html
    assert 'id="instant-start" disabled>Make instant portraits</button>' in html  # one job at a time
    fragment = client.get(f"{prefix}/doubles/instant/{photo_set.pk}/status/")
    assert fragment.status_code == 200 and f'id="job-{job.pk}-progress"' in fragment.content.decode()

    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    job = _job(tenant_a, job)
    assert job.progress == 100 and job.progress_message.startswith("2 instant portraits ready")
    assert job.result["images"] == 2 and job.result["adapter"] == "ip-adapter-sd15"
    rows = _rows(tenant_a, photo_set)
    assert len(rows) == 2 and [row.rank for row in rows] == [1, 2]
    for row in rows:
        recipe = row.recipe
        assert recipe["instant"] is True and recipe["identity_image"]["adapter"] == "ip-adapter-sd15"
        assert recipe["identity_image"]["declared_licence"] == instant.DEMO_LICENCE
        assert recipe["prompt"] == "studio portrait photo of a person" and recipe["adapters"] == []
        assert recipe["seed"] in job.payload["seeds"]
        # Scored: the tiny model's noise shows no face, so no likeness, and the flag says why.
        assert row.likeness is None and row.flags == ["no_face"]
        for field in ("image", "thumbnail", "preview"):
            name = getattr(row, field).name
            assert name.startswith(f"portraits/{tenant_a.studio.pk}/") and default_storage.exists(name)
    with default_storage.open(rows[0].image.name, "rb") as handle:
        assert Image.open(handle).size == (64, 64)

    # The card: the thumbnails through signed links, marked Instant, with their likeness; no polling any more.
    html = client.get(page_url).content.decode()
    assert html.count('class="badge state-running instant-badge">Instant</span>') == 2
    assert f'alt="Instant portrait {rows[0].pk} of Ada Client, rank 1"' in html and "/media/" in html
    assert (
        "Likeness —" in html
        and "No face found" in html
        and "hx-get" not in html.split('id="instant"')[1].split("</section>")[0]
    )

    # The API lists them, with signed links and the recipe's summary.
    listing = client.get(f"{prefix}/api/photo-sets/{photo_set.pk}/instant-portraits/")
    assert listing.status_code == 200
    results = listing.json()["results"]
    assert [entry["id"] for entry in results] == [row.pk for row in rows]
    first = results[0]
    assert first["recipe"]["instant"] is True and first["recipe"]["adapter"] == "ip-adapter-sd15"
    assert first["is_demo"] is True and first["flags"] == ["no_face"] and first["created_at"]
    assert "/media/" in first["thumbnail"] and client.get(first["thumbnail"]).status_code == 200

    # Export: the portraits and their recipes.
    with tenant_context(tenant_a.studio):
        from clients.models import Client

        name, stream = intake.export_client_zip(client=Client.objects.get(pk=photo_set.client_id))
    with zipfile.ZipFile(io.BytesIO(stream.read())) as archive:
        exported = json.loads(archive.read("instant_portraits.json"))
        assert [entry["id"] for entry in exported] == sorted(row.pk for row in rows)
        assert all(entry["recipe"]["instant"] for entry in exported)
        assert all(entry["file"] in archive.namelist() for entry in exported)

    # Erasure deletes rows and files; the receipt counts them.
    files = [getattr(row, field).name for row in rows for field in ("image", "thumbnail", "preview")]
    with tenant_context(tenant_a.studio):
        receipt = intake.erase_client(client=Client.objects.get(pk=photo_set.client_id), performed_by=tenant_a.owner)
        assert not InstantPortrait.objects.filter(pk__in=[row.pk for row in rows]).exists()
    assert receipt.kind == DeletionReceipt.Kind.CLIENT_ERASURE
    assert receipt.counts["instant_portraits"] == 2 and receipt.counts["instant_portrait_files"] == 6
    assert not any(default_storage.exists(name) for name in files)


class DoubleExists:
    """No digital double was involved: instant portraits come before training."""

    @staticmethod
    def any(photo_set: PhotoSet) -> bool:
        from generation.models import DigitalDouble

        return DigitalDouble.objects.filter(photo_set=photo_set).exists()


def test_likeness_is_scored_against_the_sets_accepted_photos(tenant_a: Tenant, monkeypatch: Any) -> None:
    """The job scores each image against the centroid of the set's photos: a render showing the client's own face
    scores high, one showing another person low (the renders replaced by photos; dlib measures the faces)."""
    from engine import instant as engine_instant
    from engine.rendering import RenderedImage

    photo_set = _accepted_set(tenant_a, ("person_a_01.jpg", "person_a_02.jpg"))
    seen: dict[str, Any] = {}

    def fake_render(**kwargs: Any) -> list[RenderedImage]:
        seen["photos"] = len(kwargs["photos"])
        seen["adapter"] = kwargs["adapter"].key
        faces = [
            Image.open(FACES / "person_a_03.jpg").convert("RGB"),
            Image.open(FACES / "person_b_01.jpg").convert("RGB"),
        ]
        recipe = {"instant": True, "identity_image": {"adapter": kwargs["adapter"].key}, "stages": []}
        return [RenderedImage(image=face, seed=i, recipe={**recipe, "seed": i}) for i, face in enumerate(faces)]

    monkeypatch.setattr(engine_instant, "render_instant", fake_render)
    job = _start(tenant_a, photo_set, images=2)
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    assert seen == {"photos": 2, "adapter": "ip-adapter-sd15"}
    with tenant_context(tenant_a.studio):
        rows = {row.recipe["seed"]: row for row in InstantPortrait.objects.filter(photo_set=photo_set)}
    assert rows[0].likeness is not None and rows[0].likeness > 50 and rows[0].rank == 1
    assert rows[1].likeness is not None and rows[1].likeness < rows[0].likeness and "low_likeness" in rows[1].flags


# --- refusals -----------------------------------------------------------------------------------------------------


def test_a_purged_set_is_refused_at_the_start_on_the_page_and_in_the_api(client: Any, tenant_a: Tenant) -> None:
    photo_set = _accepted_set(tenant_a)
    _purge(tenant_a, photo_set)
    client.force_login(tenant_a.owner)
    prefix = tenant_a.prefix

    html = client.get(f"{prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/").content.decode()
    assert "The photos of this set were deleted" in html and "Make instant portraits" not in html
    response = client.post(f"{prefix}/doubles/instant/{photo_set.pk}/", {"images": "2"})
    assert response.status_code == 409 and "The photos of this set were deleted" in response.content.decode()
    api = client.post(
        f"{prefix}/api/photo-sets/{photo_set.pk}/instant-portraits/", {"images": 2}, content_type="application/json"
    )
    assert api.status_code == 409 and api.json()["error"]["message"] == instant.PHOTOS_DELETED
    with tenant_context(tenant_a.studio):
        assert not Job.objects.filter(kind=instant.KIND).exists()


def test_a_purge_after_enqueue_fails_the_job_without_using_the_photos(tenant_a: Tenant, monkeypatch: Any) -> None:
    """Purged between enqueue and run: the job refuses before reading anything. Purged while rendering: the images
    are discarded (nothing stored). Either way the job fails with the reason."""
    from engine import instant as engine_instant

    real = engine_instant.render_instant
    photo_set = _accepted_set(tenant_a)
    job = _start(tenant_a, photo_set)
    _purge(tenant_a, photo_set)
    called: list[int] = []
    monkeypatch.setattr(engine_instant, "render_instant", lambda **kwargs: called.append(1) or [])
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    job = _job(tenant_a, job)
    assert job.error == instant.PHOTOS_DELETED and not called and not _rows(tenant_a, photo_set)

    # The race: the retention sweep purges the set while the images render.
    second = _accepted_set(tenant_a)
    job = _start(tenant_a, second)

    def purge_meanwhile(**kwargs: Any) -> Any:
        made = real(**kwargs)
        _purge(tenant_a, second)
        return made

    monkeypatch.setattr(engine_instant, "render_instant", purge_meanwhile)
    before = set(default_storage.listdir(f"portraits/{tenant_a.studio.pk}")[1]) if _exists_dir(tenant_a) else set()
    assert run_job(job.pk, tenant_a.studio.pk) == "failed"
    assert _job(tenant_a, job).error == instant.PHOTOS_DELETED and not _rows(tenant_a, second)
    after = set(default_storage.listdir(f"portraits/{tenant_a.studio.pk}")[1]) if _exists_dir(tenant_a) else set()
    assert after == before  # no file of a discarded image was written


def _exists_dir(tenant: Tenant) -> bool:
    return default_storage.exists(f"portraits/{tenant.studio.pk}")


def test_without_an_adapter_the_page_says_what_to_configure(client: Any, tenant_a: Tenant, settings: Any) -> None:
    settings.ENGINE_INSTANT_ADAPTER = ""
    photo_set = _accepted_set(tenant_a)
    client.force_login(tenant_a.owner)
    prefix = tenant_a.prefix
    html = client.get(f"{prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/").content.decode()
    assert "Instant portraits are not available on this platform" in html and "ENGINE_INSTANT_ADAPTER" in html
    assert "Make instant portraits" not in html
    response = client.post(f"{prefix}/doubles/instant/{photo_set.pk}/", {"images": "1"})
    assert response.status_code == 409 and "ENGINE_INSTANT_ADAPTER" in response.content.decode()
    api = client.post(f"{prefix}/api/photo-sets/{photo_set.pk}/instant-portraits/", {}, content_type="application/json")
    assert api.status_code == 409 and api.json()["error"]["message"] == instant.NOT_CONFIGURED


def test_a_non_commercial_adapter_is_refused_with_the_registrys_words(
    client: Any, tenant_a: Tenant, settings: Any
) -> None:
    settings.ENGINE_INSTANT_ADAPTER = json.dumps({**NON_COMMERCIAL, "image_encoder": "x/enc"})
    photo_set = _accepted_set(tenant_a)
    client.force_login(tenant_a.owner)
    html = client.get(f"{tenant_a.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/").content.decode()
    assert "can&#x27;t be enabled for a commercial service" in html and "Make instant portraits" not in html
    errors = instant.check_instant_adapter()
    assert [error.id for error in errors] == ["generation.E030"] and "declared_licence" in errors[0].msg
    # With a declared licence it is enabled (and recorded).
    settings.ENGINE_INSTANT_ADAPTER = {**NON_COMMERCIAL, "image_encoder": "x/enc", "declared_licence": "InsightFace"}
    assert instant.adapter_config().declared_licence == "InsightFace" and instant.check_instant_adapter() == []
    # The demo adapter with a real default model: refused, saying what to configure.
    settings.ENGINE_INSTANT_ADAPTER = "demo"
    settings.ENGINE_DEFAULT_MODEL = "tiny-sd15-b"
    with pytest.raises(instant.InstantError, match="only fits the tiny demo model"):
        instant.adapter_config()
    assert instant.check_instant_adapter() == []  # the embedded default blocks no deployment: the page says it


def test_no_consent_no_accepted_photo_a_bad_number_and_a_photographer_are_refused(
    client: Any, tenant_a: Tenant
) -> None:
    no_consent = _accepted_set(tenant_a, consent=False)
    empty = _accepted_set(tenant_a, ())
    good = _accepted_set(tenant_a)
    with pytest.raises(instant.InstantError, match="has no consent on record") as refused:
        _start(tenant_a, no_consent)
    assert refused.value.status == 409
    with pytest.raises(instant.InstantError, match="no accepted photo yet"):
        _start(tenant_a, empty)
    for bad in (0, 9, "four", True):
        with pytest.raises(instant.InstantError, match="between 1 and 8") as refused:
            _start(tenant_a, good, images=bad)  # type: ignore[arg-type]
        assert refused.value.status == 400
    client.force_login(tenant_a.owner)
    api = f"{tenant_a.prefix}/api/photo-sets/{good.pk}/instant-portraits/"
    assert client.post(api, {"images": 12}, content_type="application/json").status_code == 400
    started = client.post(api, {"images": 1}, content_type="application/json")
    assert started.status_code == 202 and started.json()["job"]["kind"] == "portraits.instant"
    busy = client.post(api, {"images": 1}, content_type="application/json")
    assert busy.status_code == 409 and busy.json()["error"]["message"] == instant.BUSY

    from tests.conftest import add_member

    photographer = add_member(tenant_a, "photographer@studio-a.example", "photographer")
    client.force_login(photographer)
    assert client.post(api, {"images": 1}, content_type="application/json").status_code == 403
    assert client.get(api).status_code == 200
    assert client.post(f"{tenant_a.prefix}/doubles/instant/{good.pk}/", {"images": "1"}).status_code in (403, 404)


def test_the_engine_command_builds_the_demo_adapter(tmp_path: Path, settings: Any) -> None:
    settings.ENGINE_MODELS_DIR = tmp_path / "models"
    call_command("engine", "build-tiny", "--instant-adapter", "--root", str(tmp_path / "models"))
    assert (tmp_path / "models" / instant.DEMO_FOLDER / instant.DEMO_WEIGHT_NAME).exists()
    assert (tmp_path / "models" / instant.DEMO_FOLDER / "image_encoder" / "config.json").exists()


def test_out_of_credits_is_a_402_and_nothing_is_queued(client: Any, tenant_a: Tenant, settings: Any) -> None:
    """Billed like every render: one render_image credit per instant portrait, reserved when it is queued."""
    settings.BILLING_ENFORCE_CREDITS = True
    photo_set = _accepted_set(tenant_a)
    with pytest.raises(instant.InstantError) as refused:
        _start(tenant_a, photo_set, images=3)
    assert refused.value.status == 402 and "/billing/" in refused.value.message
    client.force_login(tenant_a.owner)
    api = client.post(
        f"{tenant_a.prefix}/api/photo-sets/{photo_set.pk}/instant-portraits/",
        {"images": 3},
        content_type="application/json",
    )
    assert api.status_code == 402 and "out of GPU credits" in api.json()["error"]["message"]
    page = client.post(f"{tenant_a.prefix}/doubles/instant/{photo_set.pk}/", {"images": "3"})
    assert page.status_code == 402 and "out of GPU credits" in page.content.decode()
    with tenant_context(tenant_a.studio):
        assert not Job.objects.filter(kind=instant.KIND).exists()
    from generation.jobs import instant_cost

    charge = instant_cost({"family": "sd15", "seeds": [1, 2, 3], "images": 3})
    assert (charge.item, charge.units) == ("render_image_sd15", 3)
