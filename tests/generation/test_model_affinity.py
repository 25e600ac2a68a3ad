"""Model affinity on the real queue (issue 18, jobs/affinity.py): two real gpu workers on one Redis and one
PostgreSQL test database, ten single-image runs alternating two base models (`tiny-sd15` and a second base model
with the same weights under another name, so each is a cold load of its own), sent one at a time once both
workers are idle.

Without affinity a render lands on whichever worker's pusher waited longest, and each worker ends up loading
both models (up to four cold loads). With it, a worker that hasn't the model defers the job while the other one,
idle, has it loaded: two cold loads in all, one per model, each job still run once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from generation import runs
from jobs import workers as beacons
from jobs.models import Job
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    SECOND_TINY,
    make_template,
    ready_double,
    run_settings_fixture,
    tiny_engine_fixture,
)
from tests.generation.test_scale_out import _events, _jobs, _two_gpu_workers, shared, tiny_models_dir  # noqa: F401
from tests.jobs.brokers import RedisBroker
from tests.jobs.worker_processes import stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RENDERS = 10
AFFINITY_ENV: dict[str, str] = {}  # the workers' defaults (a run with JOB_AFFINITY_WAIT_SECONDS=0 shows the test fail)


def _second_model(source: str) -> dict[str, Any]:
    return {
        "name": SECOND_TINY,
        "family": "sd15",
        "source": source,
        "resolution": 64,
        "is_demo": True,
        "label": "Second demo model",
        "licence": "Random weights",
        "commercial_use": True,
    }


def _idle(expected: int) -> bool:
    found = beacons.live_workers(Job.Cluster.GPU)
    return len(found) == expected and not any(worker.busy for worker in found)


def test_renders_go_to_the_idle_worker_that_has_their_model_loaded(
    tenant_a: Tenant,
    redis_broker: RedisBroker,
    tmp_path: Path,
    settings: Any,
    shared: dict[str, str],  # noqa: F811
    tiny_engine: dict[str, Any],
) -> None:
    from templates_app import base_models

    source = str(base_models.get_model("tiny-sd15", enabled_only=False).source)
    settings.ENGINE_BASE_MODELS = [_second_model(source)]
    # The beacons the workers write (their REDIS_URL), read here too.
    settings.CACHES = {
        **django_settings.CACHES,
        "workers": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_broker.url},
    }
    env = {**shared, "ENGINE_BASE_MODELS": json.dumps([_second_model(source)]), **AFFINITY_ENV}

    double = ready_double(tenant_a, tiny_engine)
    first, _ = make_template(tenant_a, "Window light", base_model="tiny-sd15", images_per_run=1)
    second, _ = make_template(tenant_a, "Film look", base_model=SECOND_TINY, images_per_run=1)
    workers = _two_gpu_workers(redis_broker, tmp_path, env)
    ids: list[int] = []
    try:
        for number in range(RENDERS):
            wait_for(lambda: _idle(2), worker=workers["a"]["proc"], what="both workers idle")
            template = first if number % 2 == 0 else second
            with tenant_context(tenant_a.studio):
                run = runs.start_run(double=double, items=[(template, 1)], user=tenant_a.owner)
                job_id = run.items.get().job_id
            ids.append(job_id)
            wait_for(
                lambda job_id=job_id: _jobs(tenant_a.studio, [job_id])[0].is_terminal,
                worker=workers["b"]["proc"],
                what=f"render {number + 1}",
            )
        held = {beacon.pid: (sorted(beacon.loaded), beacon.loads) for beacon in beacons.live_workers(Job.Cluster.GPU)}
    finally:
        for worker in workers.values():
            stop_worker(worker["proc"])

    jobs = _jobs(tenant_a.studio, ids)
    assert [(job.state, job.attempts) for job in jobs] == [(Job.State.SUCCEEDED, 1)] * RENDERS, [j.error for j in jobs]
    ran = {name: [r["job_id"] for r in _events(w["log"], "job_started")] for name, w in workers.items()}
    assert sorted(ran["a"] + ran["b"]) == sorted(ids), ran  # each render ran once, on one worker
    # One cold load per model in all: each model stayed on the worker that loaded it first.
    loads = sum(count for _, count in held.values())
    assert loads == 2, held
    assert sorted(model for models, _ in held.values() for model in models) == sorted(["tiny-sd15", SECOND_TINY])
    deferred = [r for w in workers.values() for r in _events(w["log"], "job_deferred")]
    assert deferred, ran  # some render landed on the cold worker first and was handed over
    assert {r["model"] for r in deferred} <= {"tiny-sd15", SECOND_TINY}


def test_each_render_kind_names_the_base_model_it_loads(
    tenant_a: Tenant, run_settings: Path, tiny_engine: dict[str, Any]
) -> None:
    from generation import doubles
    from generation.jobs import job_base_model
    from jobs.registry import get_kind

    double = ready_double(tenant_a, tiny_engine)
    template, _ = make_template(tenant_a, "Film look", base_model=SECOND_TINY, images_per_run=1)
    with tenant_context(tenant_a.studio):
        item = runs.start_run(double=double, items=[(template, 1)], user=tenant_a.owner).items.get()
        assert job_base_model({"item_id": item.pk, "double_id": double.pk}) == SECOND_TINY  # the version's
        assert job_base_model({"double_id": double.pk}) == "tiny-sd15"  # a legacy test render: the double's
        assert job_base_model({"base_model": "tiny-sdxl", "photo_set_id": 1}) == "tiny-sdxl"  # instant portraits
        assert job_base_model({"item_id": 0}) is None and job_base_model({}) is None
    for kind in (runs.RUN_ITEM_KIND, doubles.RENDER_KIND, "portraits.instant"):
        assert get_kind(kind).model is job_base_model
    assert get_kind(doubles.TRAIN_KIND).model is None  # training loads its own modules: never routed
