"""Training checkpoints in shared storage, so a training job requeued to another host resumes where it stopped.

The engine writes each checkpoint to the worker's local work folder (``ENGINE_WORK_DIR``) and calls back
(``on_checkpoint``); the "double.train" job (generation/jobs.py) copies it here, into the media storage
(``default_storage``: S3 in production, the shared local folder in the embedded default):

    training/<studio_id>/double-<double_id>/step-<N>/<file>.enc     each checkpoint file, Fernet-encrypted
    training/<studio_id>/double-<double_id>/step-<N>/manifest.enc   written last: the files and their SHA-256

The paths name no person. A checkpoint holds a model of a person's face, so every object is encrypted like the
doubles (generation.crypto: the first DOUBLE_ENCRYPTION_KEYS key encrypts, any decrypts). A step without its
manifest is incomplete (an upload cut short) and never restored. At most :data:`KEEP` complete checkpoints are
kept; all are deleted when training ends well, and when the double is deleted or its client erased
(generation.doubles.delete_double). docs/engine.md, "Training checkpoints in shared storage".

Before training, :func:`restore_latest` copies the latest complete checkpoint into the work folder when it is
newer than any there (decrypted, checked against the manifest, written under a temporary name and renamed), so
the engine's own resume continues exactly as on the host that wrote it.

No torch at import: generation.doubles (the web side) imports this module to delete checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import structlog
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage

from generation import crypto
from generation.models import DigitalDouble

log = structlog.get_logger("generation.training_checkpoints")

ROOT = "training"
MANIFEST = "manifest.enc"
SUFFIX = ".enc"
#: Complete checkpoints kept in storage (the latest and the one before it, in case the latest is unreadable).
KEEP = 2
_STEP = re.compile(r"^step-(\d+)$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class CheckpointCorrupt(Exception):
    """A stored checkpoint that does not match its manifest (or can't be decrypted)."""


def _storage() -> Storage:
    return default_storage


def double_prefix(double: DigitalDouble) -> str:
    """The double's folder in storage: ``training/<studio_id>/double-<id>`` (no person's name)."""
    return f"{ROOT}/{int(double.studio_id)}/double-{int(double.pk)}"


def _step_prefix(double: DigitalDouble, step: int) -> str:
    return f"{double_prefix(double)}/step-{int(step)}"


def _save(storage: Storage, name: str, data: bytes) -> None:
    """Write `name` exactly (replacing an older object of that name: storages that never overwrite would pick
    another name, which nothing could find)."""
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        storage.delete(saved)
        raise OSError(f"the storage wrote {saved!r} instead of {name!r}")


def _steps(storage: Storage, double: DigitalDouble) -> list[int]:
    """Every step folder in storage, complete or not, in ascending order."""
    try:
        folders, _ = storage.listdir(double_prefix(double))
    except (FileNotFoundError, NotADirectoryError):
        return []
    steps = []
    for folder in folders:
        match = _STEP.match(folder)
        if match:
            steps.append(int(match.group(1)))
    return sorted(steps)


def _manifest(storage: Storage, double: DigitalDouble, step: int) -> dict[str, Any] | None:
    """The decrypted manifest of a complete checkpoint, or None (incomplete, unreadable)."""
    name = f"{_step_prefix(double, step)}/{MANIFEST}"
    if not storage.exists(name):
        return None
    try:
        with storage.open(name, "rb") as handle:
            manifest = json.loads(crypto.decrypt(handle.read()))
    except (crypto.DecryptionError, ValueError, OSError) as exc:
        log.warning("checkpoint_manifest_unreadable", double_id=double.pk, step=step, error=str(exc))
        return None
    if not isinstance(manifest, dict) or manifest.get("step") != step or not isinstance(manifest.get("files"), list):
        log.warning("checkpoint_manifest_invalid", double_id=double.pk, step=step)
        return None
    return manifest


def complete_steps(double: DigitalDouble) -> list[int]:
    """The steps of the double's complete checkpoints in storage, ascending."""
    storage = _storage()
    return [step for step in _steps(storage, double) if _manifest(storage, double, step) is not None]


def upload(*, double: DigitalDouble, step: int, folder: Path) -> int:
    """Copy checkpoint `step` (the engine's folder) to storage, encrypted: every file, then the manifest; then
    prune to the last :data:`KEEP` complete ones. Returns the bytes uploaded (before encryption)."""
    storage = _storage()
    base = _step_prefix(double, step)
    _delete_tree(storage, base)  # a copy of the same step cut short by an earlier attempt
    entries = []
    total = 0
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        if not _FILE.match(path.name):
            raise ValueError(f"unexpected file name in a checkpoint: {path.name!r}")
        data = path.read_bytes()
        _save(storage, f"{base}/{path.name}{SUFFIX}", crypto.encrypt(data))
        entries.append({"name": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        total += len(data)
    manifest = {"step": int(step), "files": entries}
    _save(storage, f"{base}/{MANIFEST}", crypto.encrypt(json.dumps(manifest).encode()))
    prune(double=double)
    log.info("checkpoint_uploaded", double_id=double.pk, step=step, bytes=total, files=len(entries))
    return total


def prune(*, double: DigitalDouble, keep: int = KEEP) -> int:
    """Keep the latest `keep` complete checkpoints; delete older ones and incomplete ones older than the latest
    complete one (an incomplete newer one may be an upload under way). Returns the files deleted."""
    storage = _storage()
    steps = _steps(storage, double)
    complete = [step for step in steps if _manifest(storage, double, step) is not None]
    if not complete:
        return 0
    kept = set(complete[-keep:])
    newest = complete[-1]
    deleted = 0
    for step in steps:
        if step not in kept and step < newest:
            deleted += _delete_tree(storage, _step_prefix(double, step))
    return deleted


def restore_latest(*, double: DigitalDouble, work_dir: Path) -> int | None:
    """Copy the latest complete checkpoint from storage into `work_dir` when it is newer than the latest one
    there (another host trained further); the step restored, or None. A stored checkpoint that doesn't match
    its manifest is skipped for the one before it."""
    from engine import training

    local = training.latest_checkpoint(work_dir) or 0
    storage = _storage()
    for step in reversed(_steps(storage, double)):
        if step <= local:
            break
        manifest = _manifest(storage, double, step)
        if manifest is None:
            continue
        try:
            _download(storage, double, manifest, training.checkpoint_folder(work_dir, step))
        except CheckpointCorrupt as exc:
            log.warning("checkpoint_restore_skipped", double_id=double.pk, step=step, error=str(exc))
            continue
        log.info("checkpoint_restored", double_id=double.pk, step=step)
        return step
    return None


def _download(storage: Storage, double: DigitalDouble, manifest: dict[str, Any], target: Path) -> None:
    step = int(manifest["step"])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-step-restore-{step}-{os.getpid()}"  # the engine clears leftover .tmp-step-*
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for entry in manifest["files"]:
            name = str(entry.get("name", ""))
            if not _FILE.match(name):
                raise CheckpointCorrupt(f"a file name in the manifest is not allowed: {name!r}")
            try:
                with storage.open(f"{_step_prefix(double, step)}/{name}{SUFFIX}", "rb") as handle:
                    data = crypto.decrypt(handle.read())
            except (crypto.DecryptionError, OSError) as exc:
                raise CheckpointCorrupt(f"{name}: {exc}") from None
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise CheckpointCorrupt(f"{name} does not match its manifest")
            (tmp / name).write_bytes(data)
        if target.exists():  # a thinned (LoRA only) local copy of the same step
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _delete_tree(storage: Storage, prefix: str) -> int:
    """Delete every object under `prefix` (and, on a file system, its emptied folders); the files deleted."""
    try:
        folders, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    deleted = 0
    for name in files:
        storage.delete(f"{prefix}/{name}")
        deleted += 1
    for folder in folders:
        deleted += _delete_tree(storage, f"{prefix}/{folder}")
    # FileSystemStorage removes an empty folder; object stores have none (deleting a missing key is a no-op).
    with contextlib.suppress(OSError):
        storage.delete(prefix)
    return deleted


def delete_all(*, double: DigitalDouble) -> int:
    """Delete every stored checkpoint of the double (training ended well, or the double is gone). Returns the
    files deleted."""
    return delete_prefix(double_prefix(double))


def delete_prefix(prefix: str) -> int:
    """Delete every stored checkpoint under a double's prefix (:func:`double_prefix`, taken before its row is
    deleted: a deleted row has no pk). Returns the files deleted."""
    if not prefix.startswith(f"{ROOT}/"):
        raise ValueError(f"not a training checkpoint prefix: {prefix!r}")
    deleted = _delete_tree(_storage(), prefix)
    if deleted:
        log.info("checkpoints_deleted", prefix=prefix, files=deleted)
    return deleted
