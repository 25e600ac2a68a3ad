"""Scale-out on the real queue (issue 18): two real gpu workers (`Q_CLUSTER_NAME=gpu manage.py qcluster`, each
its own process group) on one Redis and one PostgreSQL test database, each with its OWN local work folder
(ENGINE_WORK_DIR), sharing only the media storage, as two GPU hosts would.

- Twenty jobs: every one succeeds, once, on one of the two workers; none is lost or run twice.
- A training job (tiny model, CPU): the worker training it is killed with SIGKILL once a checkpoint reached shared
  storage; the sweeper requeues the job and the other worker, whose work folder is empty, restores that checkpoint
  from storage and finishes; the LoRA equals an uninterrupted run's.

The tests are transactional, so what they write is committed and the workers (other processes, as the application
role, under row-level security) see it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from cryptography.fernet import Fernet
from django.core.files.storage import default_storage

from generation import doubles
from generation import training_checkpoints as store
from generation.models import DigitalDouble
from jobs import services
from jobs.models import Job
from jobs.tasks import sweep_stale_jobs
from tenants.context import tenant_context
from tests.clients.conftest import variants
from tests.conftest import Tenant
from tests.generation.test_doubles import _validated_set
from tests.jobs.brokers import RedisBroker
from tests.jobs.worker_processes import kill_worker, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = Job.State
TRAIN_STEPS = 12
CHECKPOINT_EVERY = 2
PHOTOS = 5  # the fewest a double may train on here (INTAKE_MIN_PHOTOS, for this test and its workers)


@pytest.fixture(scope="module")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.checkpoints import build_tiny_model

    root = tmp_path_factory.mktemp("engine-models")
    build_tiny_model(root, "sd15")
    return root


@pytest.fixture
def shared(settings: Any, tmp_path: Path, tiny_models_dir: Path) -> dict[str, str]:
    """The media storage the workers share (a local folder here, S3 in production), the models and a key; what
    each worker gets in its environment besides its own work folder."""
    media = tmp_path / "shared-media"
    key = Fernet.generate_key().decode()
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    settings.ENGINE_MODELS_DIR = tiny_models_dir
    settings.ENGINE_WORK_DIR = tmp_path / "test-process-work"
    settings.ENGINE_DEVICE = "cpu"
    settings.ENGINE_BASE_MODELS = []
    settings.ENGINE_ENABLED_MODELS = []
    settings.ENGINE_DEFAULT_MODEL = "tiny-sd15"
    settings.DOUBLE_ENCRYPTION_KEYS = [key]
    settings.JOB_HEARTBEAT_STALE_SECONDS = 300
    settings.INTAKE_MIN_PHOTOS = PHOTOS
    return {
        "ENGINE_MODELS_DIR": str(tiny_models_dir),
        "ENGINE_DEVICE": "cpu",
        "ENGINE_DEFAULT_MODEL": "tiny-sd15",
        "DOUBLE_ENCRYPTION_KEYS": key,
        "INTAKE_MIN_PHOTOS": str(PHOTOS),
        "LOG_JSON": "1",
    }


def _two_gpu_workers(broker: RedisBroker, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Two gpu workers, `a` and `b`, each with its own work folder and log."""
    workers = {}
    for name in ("a", "b"):
        host = tmp_path / f"host-{name}"
        host.mkdir()
        log = host / "worker.log"
        work = host / "engine-work"
        workers[name] = {
            "log": log,
            "work": work,
            "proc": start_worker(broker, log, gpu=True, ENGINE_WORK_DIR=str(work), **env),
        }
    return workers


def _events(log_path: Path, event: str) -> list[dict]:
    """The worker's JSON log lines (LOG_JSON=1) of one event."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


def _jobs(studio: Any, ids: list[int]) -> list[Job]:
    with tenant_context(studio):
        by_pk = {job.pk: job for job in Job.objects.filter(pk__in=ids)}
    return [by_pk[pk] for pk in ids]


def test_two_gpu_workers_run_twenty_jobs_each_once(
    tenant_a: Tenant, redis_broker: RedisBroker, tmp_path: Path, settings: Any, shared: dict[str, str]
) -> None:
    """20 diagnostic jobs (the countdown, sent to the site's gpu queue for this test) on two gpu workers: all
    succeed, each on its first attempt and on one worker only (the workers' job_started lines), both share the
    work, and none is left behind."""
    studio = tenant_a.studio
    gpu_queue = redis_broker.gpu_queue
    settings.Q_QUEUES = {"default": gpu_queue, "gpu": gpu_queue}  # where this process sends the countdowns
    workers = _two_gpu_workers(redis_broker, tmp_path, shared)
    try:
        with tenant_context(studio):
            ids = [
                services.enqueue_job(kind="demo.countdown", payload={"steps": 2, "delay": 0.1}).pk for _ in range(20)
            ]
        wait_for(
            lambda: all(job.is_terminal for job in _jobs(studio, ids)),
            worker=workers["a"]["proc"],
            what="the twenty jobs to end",
        )
    finally:
        for worker in workers.values():
            stop_worker(worker["proc"])
    jobs = _jobs(studio, ids)
    assert [(job.state, job.attempts, job.result) for job in jobs] == [(S.SUCCEEDED, 1, {"steps": 2})] * 20
    ran = {name: [record["job_id"] for record in _events(w["log"], "job_started")] for name, w in workers.items()}
    every_run = ran["a"] + ran["b"]
    assert sorted(every_run) == sorted(ids), ran  # each job ran exactly once, on one worker
    assert ran["a"] and ran["b"], ran  # both workers took jobs
    assert redis_broker.client().llen(redis_broker.key(gpu_queue)) == 0


def _reference_lora(tenant: Tenant, photo_set: Any, config: dict[str, Any], work: Path) -> dict[str, torch.Tensor]:
    """The same photos and configuration trained in this process, uninterrupted."""
    from safetensors.torch import load_file

    from engine import training
    from generation.jobs import _load_training_images
    from templates_app import base_models

    with tenant_context(tenant.studio):
        images = _load_training_images(photo_set)
    spec = base_models.ensure_available(base_models.get_model("tiny-sd15", enabled_only=False))
    result = training.train_identity_lora(
        spec=spec,
        images=images,
        work_dir=work,
        config=training.TrainConfig(trigger=doubles.DEFAULT_TRIGGER, class_word="person", **config),
        device="cpu",
    )
    return load_file(str(result.lora_path))


def test_a_training_job_whose_worker_is_killed_resumes_on_the_other_from_shared_storage(
    tenant_a: Tenant,
    redis_broker: RedisBroker,
    tmp_path: Path,
    settings: Any,
    shared: dict[str, str],
) -> None:
    from safetensors.torch import load as load_safetensors

    studio = tenant_a.studio
    photo_set = _validated_set(tenant_a, variants("person_a_01.jpg"))  # five shots of one person
    config = {"steps": TRAIN_STEPS, "checkpoint_every": CHECKPOINT_EVERY, "scored_checkpoints": 1, "rank": 4}
    reference = _reference_lora(tenant_a, photo_set, config, tmp_path / "reference-work")

    with tenant_context(studio):
        double = doubles.start_training(photo_set=photo_set, base_model="tiny-sd15", user=tenant_a.owner)
        DigitalDouble.objects.filter(pk=double.pk).update(config=config)  # the task waits in Redis meanwhile
        job_id = double.job_id
    workers = _two_gpu_workers(redis_broker, tmp_path, shared)
    try:

        def started() -> str | None:
            for name, worker in workers.items():
                if any(r.get("job_id") == job_id for r in _events(worker["log"], "job_started")):
                    return name
            return None

        wait_for(lambda: started() is not None, what="a worker to start training")
        first = started()
        other = "b" if first == "a" else "a"
        # Killed (SIGKILL, the whole cluster) as soon as a checkpoint is complete in shared storage.
        wait_for(lambda: bool(store.complete_steps(double)), worker=workers[first]["proc"], what="a stored checkpoint")
        kill_worker(workers[first]["proc"])
        stored_steps = store.complete_steps(double)
        [running] = _jobs(studio, [job_id])
        assert running.state == S.RUNNING and running.attempts == 1
        assert stored_steps and max(stored_steps) < TRAIN_STEPS, stored_steps

        settings.JOB_HEARTBEAT_STALE_SECONDS = 0  # the sweeper finds the dead worker's job and requeues it
        time.sleep(0.1)
        assert sweep_stale_jobs()["requeued"] == 1
        wait_for(
            lambda: _jobs(studio, [job_id])[0].is_terminal, worker=workers[other]["proc"], what="the training to end"
        )
    finally:
        for worker in workers.values():
            stop_worker(worker["proc"])

    [job] = _jobs(studio, [job_id])
    output = workers[other]["log"].read_text(errors="replace")
    assert (job.state, job.attempts) == (S.SUCCEEDED, 2), f"{job.state}: {job.error}\n{output[-4000:]}"
    assert [r["attempt"] for r in _events(workers[other]["log"], "job_started")] == [2]
    restored = _events(workers[other]["log"], "checkpoint_restored")
    assert [r["step"] for r in restored] == [max(stored_steps)]
    with tenant_context(studio):
        double = DigitalDouble.objects.get(pk=double.pk)
        trained = load_safetensors(doubles.load_lora_bytes(double))
    assert double.status == DigitalDouble.Status.READY
    assert double.metrics["resumed_from"] == max(stored_steps) and double.metrics["steps"] == TRAIN_STEPS

    # The other worker continued from the stored checkpoint, not from zero: the LoRA is an uninterrupted run's.
    assert trained.keys() == reference.keys()
    worst = max(float((trained[k] - reference[k]).abs().max()) for k in trained)
    assert worst < 1e-5, worst

    # Each host's work folder stayed its own; the stored checkpoints are gone with the training's end.
    assert (workers[first]["work"] / f"double-{double.pk}" / "checkpoints").is_dir()  # left by the killed worker
    assert not (workers[other]["work"] / f"double-{double.pk}").exists()
    assert store.complete_steps(double) == []
    assert not default_storage.exists(store.double_prefix(double))
