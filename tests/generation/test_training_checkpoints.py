"""Training checkpoints in shared storage (generation/training_checkpoints.py): encrypted copies under a path that
names no person, only complete ones restored, at most two kept, all deleted with the double and by the erasure.

The checkpoint folders here are made by hand in the engine's layout (no torch); the real engine and real worker
processes are in tests/generation/test_scale_out.py and tests/engine/test_training.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from clients import services as intake
from generation import crypto, doubles
from generation import training_checkpoints as store
from generation.models import DigitalDouble
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.factories import make_double

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.ENGINE_WORK_DIR = tmp_path / "engine-work"
    settings.DOUBLE_ENCRYPTION_KEYS = []
    return root


@pytest.fixture
def double(tenant_a: Tenant) -> DigitalDouble:
    with tenant_context(tenant_a.studio):
        return make_double(tenant_a)


def _checkpoint(root: Path, step: int, *, full: bool = True) -> Path:
    """A checkpoint folder in the engine's layout: its LoRA, training state (unless thinned) and state.json."""
    folder = root / "checkpoints" / f"step-{step}"
    folder.mkdir(parents=True)
    (folder / "lora.safetensors").write_bytes(b'{"unet.lora": "face of a person"}' + bytes([step]) * 64)
    if full:
        (folder / "training_state.pt").write_bytes(b"optimizer" * 10 + bytes([step]))
    (folder / "state.json").write_text(json.dumps({"step": step}))
    return folder


def _stored(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_checkpoint_is_stored_encrypted_under_a_path_naming_no_one_and_restored_exactly(
    double: DigitalDouble, tmp_path: Path, media: Path
) -> None:
    host_a = tmp_path / "host-a"
    folder = _checkpoint(host_a, 6)
    assert store.upload(double=double, step=6, folder=folder) > 0
    prefix = f"training/{double.studio_id}/double-{double.pk}/step-6"
    assert _stored(media) == [
        f"{prefix}/lora.safetensors.enc",
        f"{prefix}/manifest.enc",
        f"{prefix}/state.json.enc",
        f"{prefix}/training_state.pt.enc",
    ]
    for name in _stored(media):
        raw = (media / name).read_bytes()
        assert crypto.is_encrypted(raw) and b"face" not in raw and b"step" not in raw
    assert store.complete_steps(double) == [6]

    host_b = tmp_path / "host-b"  # another worker's empty work folder
    assert store.restore_latest(double=double, work_dir=host_b) == 6
    restored = host_b / "checkpoints" / "step-6"
    assert sorted(p.name for p in restored.iterdir()) == ["lora.safetensors", "state.json", "training_state.pt"]
    for name in ("lora.safetensors", "state.json", "training_state.pt"):
        assert (restored / name).read_bytes() == (folder / name).read_bytes()
    assert not list((host_b / "checkpoints").glob(".tmp-*"))
    # Nothing newer in storage than here: nothing to restore.
    assert store.restore_latest(double=double, work_dir=host_b) is None
    assert store.restore_latest(double=double, work_dir=host_a) is None


def test_only_complete_checkpoints_count_and_a_newer_one_replaces_an_older_local_one(
    double: DigitalDouble, tmp_path: Path, media: Path
) -> None:
    host_a = tmp_path / "host-a"
    store.upload(double=double, step=2, folder=_checkpoint(host_a, 2))
    store.upload(double=double, step=4, folder=_checkpoint(host_a, 4))
    # An upload of step 6 cut short (the worker died): a file is there, the manifest never came.
    base = media / f"training/{double.studio_id}/double-{double.pk}"
    (base / "step-6").mkdir()
    (base / "step-6" / "lora.safetensors.enc").write_bytes(crypto.encrypt(b"half of it"))
    assert store.complete_steps(double) == [2, 4]

    host_b = tmp_path / "host-b"
    _checkpoint(host_b, 2)  # this host trained to step 2 before the job moved elsewhere
    assert store.restore_latest(double=double, work_dir=host_b) == 4

    # A stored checkpoint that doesn't match its manifest is skipped for the one before it.
    host_c = tmp_path / "host-c"
    tampered = media / f"training/{double.studio_id}/double-{double.pk}/step-4/lora.safetensors.enc"
    tampered.write_bytes(crypto.encrypt(b"something else"))
    assert store.restore_latest(double=double, work_dir=host_c) == 2
    assert sorted(p.name for p in (host_c / "checkpoints").iterdir()) == ["step-2"]
    # Not decryptable with the keys in force: skipped too.
    tampered.write_bytes(b"gAAAAAnot-a-token")
    assert store.restore_latest(double=double, work_dir=tmp_path / "host-d") == 2


def test_at_most_two_complete_checkpoints_are_kept(double: DigitalDouble, tmp_path: Path, media: Path) -> None:
    host = tmp_path / "host"
    for step in (2, 4, 6, 8):
        store.upload(double=double, step=step, folder=_checkpoint(host, step))
    base = media / f"training/{double.studio_id}/double-{double.pk}"
    assert sorted(p.name for p in base.iterdir()) == ["step-6", "step-8"]
    assert store.complete_steps(double) == [6, 8]
    # The same step uploaded again (a later attempt) replaces the copy, under the same names.
    store.upload(double=double, step=8, folder=_checkpoint(tmp_path / "again", 8, full=False))
    assert sorted(p.name for p in (base / "step-8").iterdir()) == [
        "lora.safetensors.enc",
        "manifest.enc",
        "state.json.enc",
    ]


def test_deleting_the_double_deletes_its_stored_checkpoints(
    double: DigitalDouble, tenant_a: Tenant, tmp_path: Path, media: Path
) -> None:
    store.upload(double=double, step=2, folder=_checkpoint(tmp_path / "host", 2))
    other = tmp_path / "other"
    with tenant_context(tenant_a.studio):
        another = make_double(tenant_a)
    store.upload(double=another, step=2, folder=_checkpoint(other, 2))
    with tenant_context(tenant_a.studio):
        counts = doubles.delete_double(double=DigitalDouble.objects.get(pk=double.pk))
    assert counts["checkpoint_files"] == 4 and counts["doubles"] == 1
    assert not (media / f"training/{double.studio_id}/double-{double.pk}").exists()
    assert store.complete_steps(another) == [2]  # another double's are untouched


def test_erasing_the_client_deletes_the_stored_checkpoints_and_the_receipt_counts_them(
    double: DigitalDouble, tenant_a: Tenant, tmp_path: Path, media: Path
) -> None:
    store.upload(double=double, step=2, folder=_checkpoint(tmp_path / "host", 2))
    store.upload(double=double, step=4, folder=_checkpoint(tmp_path / "host", 4))
    with tenant_context(tenant_a.studio):
        receipt = intake.erase_client(client=double.client, performed_by=tenant_a.owner)
    assert receipt.counts["training_checkpoint_files"] == 8
    assert not [name for name in _stored(media) if name.startswith("training/")]
    assert not default_storage.exists(store.double_prefix(double))


def test_deleting_refuses_a_prefix_outside_the_training_folder() -> None:
    with pytest.raises(ValueError):
        store.delete_prefix("doubles/1")


# --- the training job's side (generation/jobs.py) -------------------------------------------------------------


def test_a_checkpoint_a_running_attempt_uploads_after_the_double_was_deleted_is_deleted_at_once(
    double: DigitalDouble, tenant_a: Tenant, tmp_path: Path, media: Path
) -> None:
    from generation.jobs import _share_checkpoint

    with tenant_context(tenant_a.studio):
        doubles.delete_double(double=DigitalDouble.objects.get(pk=double.pk))
        # The worker still training it (it hasn't seen the cancellation yet) writes its next checkpoint.
        _share_checkpoint(double, 4, _checkpoint(tmp_path / "host", 4))
    assert not [name for name in _stored(media) if name.startswith("training/")]


def test_storage_failures_cost_the_copy_not_the_training(
    double: DigitalDouble, tenant_a: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generation.jobs import _restore_checkpoint, _share_checkpoint

    def unavailable(**kwargs: Any) -> None:
        raise OSError("S3 is unavailable")

    monkeypatch.setattr(store, "upload", unavailable)
    monkeypatch.setattr(store, "restore_latest", unavailable)
    with tenant_context(tenant_a.studio):
        _share_checkpoint(double, 2, _checkpoint(tmp_path / "host", 2))  # logged, not raised: training goes on
        assert _restore_checkpoint(double, tmp_path / "host") is None  # trains from the local folder
