"""Digital doubles and portraits, end to end on PostgreSQL with the real engine (tiny model, CPU, a few steps):
training from a validated photo set through the real job, encryption at rest, the after-training purge,
rendering with likeness ranking, "more like me", the pages, export and erasure, and the refusals."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from clients import services as intake
from clients.models import DeletionReceipt, Photo, PhotoSet
from generation import crypto, doubles, portraits
from generation.models import DigitalDouble, Portrait
from jobs.models import Job
from jobs.tasks import run_job
from templates_app import base_models
from tenants.context import tenant_context
from tests.clients.conftest import jpeg_bytes, upload, variants
from tests.conftest import Tenant
from tests.generation.runs_support import start_test_render_job

pytestmark = pytest.mark.django_db

TRAIN_STEPS = 4


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.checkpoints import build_tiny_model

    root = tmp_path_factory.mktemp("engine-models")
    build_tiny_model(root, "sd15")
    return root


@pytest.fixture(autouse=True)
def engine_settings(settings: Any, tmp_path: Path, tiny_models_dir: Path) -> Path:
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.ENGINE_MODELS_DIR = tiny_models_dir
    settings.ENGINE_WORK_DIR = tmp_path / "engine-work"
    settings.ENGINE_TRAIN_STEPS = TRAIN_STEPS
    settings.ENGINE_DEVICE = "cpu"
    settings.ENGINE_BASE_MODELS = []
    settings.ENGINE_ENABLED_MODELS = []
    settings.ENGINE_DEFAULT_MODEL = "tiny-sd15"
    settings.DOUBLE_ENCRYPTION_KEYS = []
    return root


def _consented_set(tenant: Tenant) -> PhotoSet:
    with tenant_context(tenant.studio):
        client = intake.create_client(name="Ada Client", email="ada@example.com", created_by=tenant.owner)
        intake.record_consent(
            client=client,
            consent_text=intake.current_consent_text(),
            method="staff",
            ip="203.0.113.5",
            collected_by=tenant.owner,
        )
        return intake.create_photo_set(client=client, created_by=tenant.owner)


def _ten_photos() -> dict[str, bytes]:
    photos = {**variants("person_a_01.jpg"), **variants("person_a_02.jpg")}
    assert len(photos) == 10
    return photos


def _validated_set(tenant: Tenant, photos: dict[str, bytes]) -> PhotoSet:
    """A consented client's set with these photos, validated by the real intake job."""
    photo_set = _consented_set(tenant)
    with tenant_context(tenant.studio):
        for name, data in photos.items():
            intake.add_photo(photo_set=photo_set, upload=upload(data, name), source="studio")
        job = intake.request_validation(photo_set=photo_set, user=tenant.owner)
    assert run_job(job.pk, tenant.studio.pk) == "succeeded"
    return photo_set


@pytest.fixture
def ready_set(tenant_a: Tenant) -> PhotoSet:
    photo_set = _validated_set(tenant_a, _ten_photos())
    with tenant_context(tenant_a.studio):
        assert Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).count() == 10
        from clients.selectors import readiness

        assert readiness(photo_set=photo_set).can_train
    return photo_set


def _reload(tenant: Tenant, obj: Any) -> Any:
    with tenant_context(tenant.studio):
        return type(obj).objects.get(pk=obj.pk)


# --- the whole life of a double -------------------------------------------------------------------------------


def test_training_a_double_through_its_page_stores_it_encrypted_and_purges_the_photos(
    client: Any, two_tenants: tuple[Tenant, Tenant], ready_set: PhotoSet, tiny_models_dir: Path, tmp_path: Path
) -> None:
    """The client page offers training; the real job (tiny model, CPU) trains and stores the double encrypted, and
    the source photos leave storage. What happens next (test renders, "more like me", export, erasure) is in
    tests/generation/test_test_renders.py."""
    tenant_a, _ = two_tenants
    studio = tenant_a.studio
    client.force_login(tenant_a.owner)
    prefix = tenant_a.prefix

    # The client page offers training on the ready set, with the model's licence and commercial-use flag.
    page = client.get(f"{prefix}/clients/{ready_set.client_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Digital doubles" in html and "Train a digital double" in html
    assert "commercial use allowed" in html and f"/doubles/train/{ready_set.pk}/" in html

    with tenant_context(studio):
        files = [(p.original.name, p.face_crop.name) for p in Photo.objects.filter(photo_set=ready_set) if p.face_crop]
    assert len(files) == 10 and all(default_storage.exists(o) and default_storage.exists(c) for o, c in files)

    # Start training through the page: a queued double with its gpu job.
    response = client.post(
        f"{prefix}/doubles/train/{ready_set.pk}/", {"base_model": "tiny-sd15", "class_word": "woman"}
    )
    assert response.status_code == 302
    with tenant_context(studio):
        double = DigitalDouble.objects.get(photo_set=ready_set)
        job = Job.objects.get(pk=double.job_id)
    assert response["Location"].endswith(f"/doubles/{double.pk}/")
    assert (double.status, double.class_word, double.is_demo) == ("queued", "woman", True)
    assert (job.kind, job.cluster, job.payload) == ("double.train", "gpu", {"double_id": double.pk})

    # The real training job (tiny model, CPU, a few steps).
    assert run_job(job.pk, studio.pk) == "succeeded"
    double, job = _reload(tenant_a, double), _reload(tenant_a, job)
    assert double.status == DigitalDouble.Status.READY and double.trained_at is not None
    assert job.progress == 100 and job.result["double_id"] == double.pk
    assert job.progress_message.startswith(f"Digital double ready ({TRAIN_STEPS} steps in ")  # not a stale step
    assert double.metrics["steps"] == TRAIN_STEPS and double.metrics["photos"] == 10
    assert {"best_step", "scores", "seconds", "resumed_from"} <= set(double.metrics)
    assert not doubles.work_dir(double).exists()  # checkpoints removed once the double is stored

    # Encrypted at rest: the stored file is a Fernet token, not safetensors, under a path naming no one.
    stored = double.lora_file.name
    assert re.fullmatch(rf"doubles/{studio.pk}/[0-9a-f]{{32}}\.bin", stored), stored  # a random name, no person
    with default_storage.open(stored, "rb") as handle:
        raw = handle.read()
    # (a Fernet token is URL-safe base64: no '"' can appear in it, while every safetensors header has them)
    assert crypto.is_encrypted(raw) and b'"dtype"' not in raw
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    with pytest.raises(SafetensorError):
        load_safetensors(raw)
    with tenant_context(studio):
        plain = doubles.load_lora_bytes(double)
        ident = doubles.centroid(double)
    tensors = load_safetensors(plain)
    assert tensors and any("lora" in key for key in tensors)
    # ...and plain diffusers loads the decrypted file.
    from diffusers import StableDiffusionPipeline

    lora_path = tmp_path / "double.safetensors"
    lora_path.write_bytes(plain)
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_models_dir / "tiny-sd15"))
    pipe.load_lora_weights(str(lora_path), adapter_name="identity")
    assert "identity" in pipe.get_list_adapters().get("unet", [])
    del pipe

    # The identity centroid round-trips (128 float32 values), or there is none when no face was scored.
    if ident is not None:
        assert ident.shape == (128,) and ident.dtype == np.float32 and np.isfinite(ident).all()
        assert bytes(double.centroid_encrypted) != ident.tobytes()

    # The source photos left storage; a receipt of kind after_training says so; the set is closed.
    assert not any(default_storage.exists(o) or default_storage.exists(c) for o, c in files)
    with tenant_context(studio):
        receipt = DeletionReceipt.objects.get(kind=DeletionReceipt.Kind.AFTER_TRAINING, photo_set_ref=ready_set.pk)
        assert receipt.counts["originals"] == 10 and receipt.counts["face_crops"] == 10
        assert PhotoSet.objects.get(pk=ready_set.pk).status == PhotoSet.Status.TRAINED

    # The double's page shows it ready, with its metrics and the test render form, and no portraits yet.
    page = client.get(f"{prefix}/doubles/{double.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'action="{prefix}/doubles/{double.pk}/render/"' in html and "No portraits yet." in html


# --- refusals -------------------------------------------------------------------------------------------------


def test_training_is_refused_until_the_set_is_ready(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    tenant_a, _ = two_tenants
    photo_set = _consented_set(tenant_a)
    with tenant_context(tenant_a.studio):
        for index in range(3):
            image = Image.new("RGB", (400, 400), (index * 40, 90, 120))
            intake.add_photo(photo_set=photo_set, upload=upload(jpeg_bytes(image)), source="studio")
        with pytest.raises(doubles.DoubleError) as refused:
            doubles.start_training(photo_set=photo_set, base_model="tiny-sd15", user=tenant_a.owner)
        assert refused.value.status == 409 and "still being checked" in refused.value.message
        Photo.objects.filter(photo_set=photo_set).update(status=Photo.Status.ACCEPTED)
        with pytest.raises(doubles.DoubleError) as refused:
            doubles.start_training(photo_set=photo_set, user=tenant_a.owner)
        assert refused.value.status == 409 and "at least 10 accepted photos" in refused.value.message
        assert not DigitalDouble.objects.exists() and not Job.objects.filter(kind="double.train").exists()

    # Through the page: redirected back to the client with the reason; nothing created.
    client.force_login(tenant_a.owner)
    form = {"base_model": "tiny-sd15", "class_word": "man"}
    response = client.post(f"{tenant_a.prefix}/doubles/train/{photo_set.pk}/", form, follow=True)
    assert "at least 10 accepted photos" in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert not DigitalDouble.objects.exists()


def test_unknown_or_disabled_models_and_bad_class_words_are_refused(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    tenant_a, _ = two_tenants
    photo_set = _consented_set(tenant_a)
    settings.ENGINE_BASE_MODELS = [
        {
            "name": "sd15-real",
            "family": "sd15",
            "source": str(tmp_path / "nowhere"),
            "licence": "CreativeML OpenRAIL-M",
            "commercial_use": True,
        },
        {"name": "sdxl-nc", "family": "sdxl", "source": "org/sdxl-nc", "licence": "Non-commercial", "label": "NC"},
    ]
    settings.ENGINE_ENABLED_MODELS = ["tiny-sd15", "sd15-real"]
    assert [s.name for s in base_models.all_models()] == ["tiny-sd15", "sd15-real", "sdxl-nc"]
    assert [s.name for s in base_models.enabled_models()] == ["tiny-sd15", "sd15-real"]
    assert base_models.get_model("sdxl-nc", enabled_only=False).native_resolution == 1024
    with pytest.raises(base_models.UnknownBaseModel, match="not available"):
        base_models.get_model("sdxl-nc")
    with pytest.raises(base_models.UnknownBaseModel, match="no base model"):
        base_models.get_model("nope")
    with tenant_context(tenant_a.studio):
        for kwargs, text in (
            ({"base_model": "sdxl-nc"}, "not available"),
            ({"base_model": "nope"}, "no base model"),
            ({"class_word": "robot"}, "woman, man, person"),
        ):
            with pytest.raises(doubles.DoubleError, match=text) as refused:
                doubles.start_training(photo_set=photo_set, user=tenant_a.owner, **kwargs)
            assert refused.value.status == 400

    out = io.StringIO()
    call_command("engine", "models", stdout=out)
    listing = out.getvalue()
    assert "tiny-sd15" in listing and "demo: images are noise" in listing
    assert "sdxl-nc" in listing and "commercial use: NO" in listing and "disabled" in listing
    assert "CreativeML OpenRAIL-M" in listing


def test_render_config_is_checked_and_needs_a_ready_double(two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.generation.factories import make_double, make_portrait

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
        for config, text in (
            ({"prompt": "no subject here"}, "{subject}"),
            ({"prompt": "a {subject}", "steps": 0}, "between 1 and"),
            ({"prompt": "a {subject}", "images": 99}, "between 1 and"),
            ({"prompt": "a {subject}", "identity_weight": 3}, "identity weight"),
            ({"prompt": "a {subject}", "scheduler": "plms"}, "Unknown scheduler"),
            ({"prompt": "a {subject}", "steps": "many"}, "must be numbers"),
            # never cut: too long is refused with the count (CLIP tokens; {subject} is "ohwx person", 2 tokens)
            ({"prompt": "{subject} " + "a " * 310}, "This prompt is 312 tokens long; the most is 225."),
            ({"prompt": "a {subject}", "negative_prompt": "blurry, " * 120}, "negative prompt is 240 tokens long"),
            ({"prompt": "a {subject}", "negative_prompt": "x" * 1001}, "negative prompt is too long"),
        ):
            with pytest.raises(doubles.DoubleError, match=text):
                start_test_render_job(double, config)
        double.status = DigitalDouble.Status.TRAINING
        double.save()
        with pytest.raises(doubles.DoubleError) as refused:
            start_test_render_job(double, {"prompt": "a {subject}"})
        assert refused.value.status == 409
        portrait = make_portrait(tenant_a)
        portrait.double.status = DigitalDouble.Status.FAILED
        portrait.double.save()
        with pytest.raises(doubles.DoubleError):
            portraits.more_like_me(portrait=portrait)


def test_the_django_side_schedulers_match_the_engine() -> None:
    from engine import rendering

    assert set(doubles.SCHEDULERS) == set(rendering.SCHEDULERS)


# --- isolation and roles --------------------------------------------------------------------------------------


def test_another_studios_double_and_portrait_are_404(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.generation.factories import make_portrait

    tenant_a, tenant_b = two_tenants
    with tenant_context(tenant_b.studio):
        theirs = make_portrait(tenant_b)
    with tenant_context(tenant_a.studio):
        mine = make_portrait(tenant_a)
    client.force_login(tenant_a.owner)
    base = f"{tenant_a.prefix}/doubles"
    assert client.get(f"{base}/{mine.double_id}/").status_code == 200
    for url in (f"{base}/{theirs.double_id}/", f"{base}/{theirs.double_id}/status/"):
        assert client.get(url).status_code == 404
    for url in (
        f"{base}/{theirs.double_id}/render/",
        f"{base}/{theirs.double_id}/delete/",
        f"{base}/{theirs.double_id}/portraits/{theirs.pk}/more-like-me/",
        f"{base}/{mine.double_id}/portraits/{theirs.pk}/more-like-me/",
        f"{base}/train/{theirs.double.photo_set_id}/",
    ):
        assert client.post(url, {"prompt": "a {subject}"}).status_code == 404, url
    with tenant_context(tenant_b.studio):
        assert DigitalDouble.objects.filter(pk=theirs.double_id).exists()


def test_photographers_look_but_do_not_act(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.conftest import add_member
    from tests.generation.factories import make_portrait

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        portrait = make_portrait(tenant_a)
    photographer = add_member(tenant_a, "photographer@studio-a.example", "photographer")
    client.force_login(photographer)
    base = f"{tenant_a.prefix}/doubles/{portrait.double_id}"
    page = client.get(f"{base}/")
    assert page.status_code == 200 and "More like me" not in page.content.decode()
    status = client.get(f"{base}/status/", headers={"HX-Request": "true"})
    assert status.status_code == 200 and status["HX-Refresh"] == "true"  # nothing runs: the page reloads once
    assert client.post(f"{base}/portraits/{portrait.pk}/more-like-me/").status_code == 404
    assert client.post(f"{base}/delete/").status_code == 404
    with tenant_context(tenant_a.studio):
        assert Portrait.objects.filter(pk=portrait.pk).exists()


def test_deleting_a_double_deletes_its_files(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    from django.core.files.base import ContentFile

    from tests.generation.factories import make_portrait

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        portrait = make_portrait(tenant_a)
        portrait.image.save("p.png", ContentFile(b"\x89PNG\r\n\x1a\n" + b"0" * 10), save=True)
        double = portrait.double
        double.lora_file.save("d.bin", ContentFile(crypto.encrypt(b"weights")), save=True)
    names = [portrait.image.name, double.lora_file.name]
    assert all(default_storage.exists(n) for n in names)
    client.force_login(tenant_a.owner)
    response = client.post(f"{tenant_a.prefix}/doubles/{double.pk}/delete/")
    assert response.status_code == 302 and response["Location"].endswith(f"/clients/{double.client_id}/#doubles")
    assert not any(default_storage.exists(n) for n in names)
    with tenant_context(tenant_a.studio):
        assert not DigitalDouble.objects.filter(pk=double.pk).exists()


def test_the_identity_centroid_is_described_in_the_export_and_goes_with_erasure(
    two_tenants: tuple[Tenant, Tenant],
) -> None:
    """Finding 12 (issue 13): the export's doubles.json says that a double keeps an encrypted identity centroid
    (a numerical description of the face) and what it is for, without the numbers; erasing the client deletes
    the double's row and with it the centroid."""
    from tests.generation.factories import make_double

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        double = make_double(tenant_a)
        centroid = np.arange(128, dtype=np.float32)
        double.centroid_encrypted = crypto.encrypt(centroid.tobytes())
        double.save(update_fields=["centroid_encrypted"])
        bare = DigitalDouble.objects.create(
            client=double.client,
            photo_set=double.photo_set,
            base_model="tiny-sd15",
            family="sd15",
            trigger="ohwx",
            status=DigitalDouble.Status.READY,
        )
        name, stream = intake.export_client_zip(client=double.client)
        with stream, zipfile.ZipFile(stream) as archive:
            raw = archive.read("doubles.json")
    exported = {entry["id"]: entry for entry in json.loads(raw)}
    described = exported[double.pk]["identity_centroid"]
    assert described.startswith("Kept, not exported") and "numerical description of the face" in described
    assert "encrypted" in described and "resemble the client" in described and "erasing the client" in described
    assert exported[bare.pk]["identity_centroid"] == "None kept for this double."
    assert json.dumps(centroid.tolist()[1:4])[1:-1] not in raw.decode()  # the numbers are not in the export

    with tenant_context(tenant_a.studio):
        receipt = intake.erase_client(client=double.client, performed_by=tenant_a.owner)
        assert not DigitalDouble.objects.filter(pk__in=[double.pk, bare.pk]).exists()
        assert not DigitalDouble.objects.exclude(centroid_encrypted=None).exists()
    assert receipt.counts["doubles"] == 2


# --- encryption at rest ---------------------------------------------------------------------------------------


def test_encryption_round_trip_rotation_and_wrong_keys(settings: Any) -> None:
    from cryptography.fernet import Fernet
    from django.core.checks import run_checks

    settings.DOUBLE_ENCRYPTION_KEYS = []
    token = crypto.encrypt(b"secret weights")
    assert crypto.is_encrypted(token) and crypto.decrypt(token) == b"secret weights"
    assert any(w.id == "generation.W010" for w in run_checks(include_deployment_checks=True))

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DOUBLE_ENCRYPTION_KEYS = [old]
    old_token = crypto.encrypt(b"weights")
    settings.DOUBLE_ENCRYPTION_KEYS = [new, old]  # rotation: the new key first, the old one still decrypts
    assert crypto.decrypt(old_token) == b"weights"
    rotated = crypto.rotate(old_token)
    settings.DOUBLE_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == b"weights"
    with pytest.raises(crypto.DecryptionError, match="DOUBLE_ENCRYPTION_KEYS"):
        crypto.decrypt(old_token)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)  # the development key is not configured any more
    assert not any(w.id == "generation.W010" for w in run_checks(include_deployment_checks=True))
    settings.DOUBLE_ENCRYPTION_KEYS = ["not-a-key"]
    assert any(e.id == "generation.E010" for e in run_checks())


def test_rotate_keys_command_re_encrypts_every_double(settings: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    from cryptography.fernet import Fernet
    from django.core.files.base import ContentFile

    from tests.generation.factories import make_double

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DOUBLE_ENCRYPTION_KEYS = [old]
    made = []
    for tenant in two_tenants:
        with tenant_context(tenant.studio):
            double = make_double(tenant)
            double.lora_file.save("d.bin", ContentFile(crypto.encrypt(b"weights")), save=False)
            double.centroid_encrypted = crypto.encrypt(np.ones(128, dtype=np.float32).tobytes())
            double.save()
            made.append((tenant, double))
    settings.DOUBLE_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("engine", "rotate-keys", stdout=out)
    assert "Re-encrypted 2" in out.getvalue()
    settings.DOUBLE_ENCRYPTION_KEYS = [new]
    for tenant, double in made:
        fresh = _reload(tenant, double)
        assert not default_storage.exists(double.lora_file.name)
        with tenant_context(tenant.studio):
            assert doubles.load_lora_bytes(fresh) == b"weights"
            assert doubles.centroid(fresh).tolist() == [1.0] * 128


def test_cancellation_reaches_the_engine_as_should_cancel(two_tenants: tuple[Tenant, Tenant]) -> None:
    """The training and render jobs hand the engine `should_cancel()`: it turns the job's cancel request into
    True (checked at most once a second), and the handler raises JobCancelled once the engine stopped."""
    from generation.jobs import _Throttle, train_message
    from jobs.registry import JobCancelled, JobContext

    tenant_a, _ = two_tenants
    with tenant_context(tenant_a.studio):
        job = Job.objects.create(kind="double.train", state=Job.State.RUNNING, attempts=1)
        throttle = _Throttle(JobContext(job))
        assert throttle.should_cancel() is False
        throttle.progress(50, train_message(120, 800, 0.0834, 125), force=True)
        assert Job.objects.get(pk=job.pk).progress_message == "Step 120 of 800 · loss 0.083 · about 2 min left"
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        assert throttle.should_cancel() is False  # not checked again within the second
        throttle.last_check = 0.0
        assert throttle.should_cancel() is True
        with pytest.raises(JobCancelled):
            throttle.raise_stop()


# --- what the pages say while a double trains -----------------------------------------------------------------


def _accepted_set(tenant: Tenant) -> PhotoSet:
    """A set of 10 photos marked accepted (no validation run: only the states matter here)."""
    photo_set = _consented_set(tenant)
    with tenant_context(tenant.studio):
        for index in range(10):
            image = Image.new("RGB", (400, 400), (index * 20, 90, 120))
            intake.add_photo(photo_set=photo_set, upload=upload(jpeg_bytes(image)), source="studio")
        Photo.objects.filter(photo_set=photo_set).update(status=Photo.Status.ACCEPTED)
    return photo_set


def test_the_pages_show_the_training_jobs_state_and_no_train_form_while_it_runs(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    from jobs.services import cancel_job, retry_job

    tenant_a, _ = two_tenants
    photo_set = _accepted_set(tenant_a)
    client.force_login(tenant_a.owner)
    client_page = f"{tenant_a.prefix}/clients/{photo_set.client_id}/"
    assert "Train a digital double</button>" in client.get(client_page).content.decode()
    with tenant_context(tenant_a.studio):
        double = doubles.start_training(photo_set=photo_set, user=tenant_a.owner)
    double_page = f"{tenant_a.prefix}/doubles/{double.pk}/"

    def badge(url: str) -> str:
        html = client.get(url).content.decode()
        return re.search(r'<span class="badge state-(\w+)"[^>]*>(\w+)</span>', html[html.find("<main") :]).groups()

    # Queued: no Train form for the set (a second double would only be refused).
    page = client.get(client_page).content.decode()
    assert "Train a digital double</button>" not in page
    assert badge(double_page) == ("queued", "Queued")
    # Cancelled while it trained (the handler marks the double failed): "Cancelled", not "Failed".
    with tenant_context(tenant_a.studio):
        DigitalDouble.objects.filter(pk=double.pk).update(status=DigitalDouble.Status.FAILED)
        cancel_job(job=double.job)
    assert badge(double_page) == ("cancelled", "Cancelled")
    assert "Train a digital double</button>" in client.get(client_page).content.decode()
    # Retried: the retry's own state, though the double's stored status changes only when a worker picks it up.
    with tenant_context(tenant_a.studio):
        retry_job(job=_reload(tenant_a, double).job)
        with pytest.raises(doubles.DoubleError) as refused:
            doubles.start_training(photo_set=photo_set, user=tenant_a.owner)
    assert refused.value.status == 409
    assert badge(double_page) == ("queued", "Queued")
    assert "Train a digital double</button>" not in client.get(client_page).content.decode()
    with tenant_context(tenant_a.studio):
        Job.objects.filter(pk=double.job_id).update(state=Job.State.RUNNING)
    assert badge(double_page) == ("running", "Training")
