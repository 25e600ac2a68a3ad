"""A GPU kind's task goes to the gpu cluster's queue (broker list key), never to the default one."""

from __future__ import annotations

import pytest
from django_q.signing import BadSignature, SignedPackage

from jobs import services
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db


def _ours(raw_items: list[bytes], job_id: int) -> list[bytes]:
    """The queue entries that carry run_job for this job (others on a shared Redis are ignored)."""
    found = []
    for raw in raw_items:
        try:
            task = SignedPackage.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except BadSignature:
            continue
        if task.get("func") == services.RUN_JOB_TASK and task["args"][0] == job_id:
            found.append(raw)
    return found


def test_a_gpu_job_lands_on_the_gpu_queue_of_redis(
    tenant_a,
    test_kinds,
    redis_broker,
    django_capture_on_commit_callbacks,
):
    client = redis_broker.client()
    gpu_key, default_key = redis_broker.key(redis_broker.gpu_queue), redis_broker.key(redis_broker.prefix)
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        gpu_job = services.enqueue_job(kind="test.gpu")
        cpu_job = services.enqueue_job(kind="demo.countdown")
    try:
        gpu_queue = client.lrange(gpu_key, 0, -1)
        default_queue = client.lrange(default_key, 0, -1)
        assert len(_ours(gpu_queue, gpu_job.pk)) == 1
        assert _ours(default_queue, gpu_job.pk) == []
        assert len(_ours(default_queue, cpu_job.pk)) == 1
        assert _ours(gpu_queue, cpu_job.pk) == []
    finally:
        for raw in _ours(client.lrange(gpu_key, 0, -1), gpu_job.pk):
            client.lrem(gpu_key, 0, raw)  # leave nothing for a real GPU worker on this Redis


def test_a_gpu_job_lands_on_the_gpu_queue_of_the_orm_broker(
    tenant_a, test_kinds, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The embedded default (ORM broker): the queue name is the OrmQ row's key."""
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "ORM", "default")
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        gpu_job = services.enqueue_job(kind="test.gpu")
        cpu_job = services.enqueue_job(kind="demo.countdown")
    default_queue = services.queue_name("default")
    by_key: dict[str, list[int]] = {}
    for row in OrmQ.objects.all():
        by_key.setdefault(row.key, []).append(row.args()[0])
    assert by_key[services.queue_name("gpu")] == [gpu_job.pk]
    assert by_key[default_queue] == [cpu_job.pk]
