"""Fixtures for the job system: jobs in studio A and B, test-only job kinds, and a recorder for enqueues."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobs.models import Job
from jobs.registry import Charge, JobContext, JobError, RetryableJobError, job_handler, unregister
from tenants.context import tenant_context
from tests.jobs.brokers import redis_broker  # noqa: F401  (a fixture: Redis broker, unique prefix)


def make_job(tenant: Any, **fields: Any) -> Job:
    """A job row in the tenant's studio, without enqueueing anything."""
    fields.setdefault("kind", "demo.countdown")
    fields.setdefault("payload", {"steps": 3, "delay": 0})
    with tenant_context(tenant.studio):
        return Job.objects.create(**fields)


def reload(job: Job) -> Job:
    with tenant_context(job.studio):
        return Job.objects.get(pk=job.pk)


@dataclass
class Enqueued:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    @property
    def job_ids(self) -> list[int]:
        return [args[1] for args, _ in self.calls]


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    """Records django_q.tasks.async_task calls instead of sending them to a broker."""
    record = Enqueued()

    def fake_async_task(*args: Any, **kwargs: Any) -> str:
        record.calls.append((args, kwargs))
        return "fake-task-id"

    monkeypatch.setattr("django_q.tasks.async_task", fake_async_task)
    return record


CALLS: list[str] = []


@pytest.fixture
def test_kinds() -> Iterator[list[str]]:
    """Job kinds for tests: one that fails for people, one that crashes, one that is retryable, a GPU one."""
    CALLS.clear()

    @job_handler("test.fail")
    def fail(ctx: JobContext) -> None:
        CALLS.append("fail")
        raise JobError("The photo set has no usable photos.")

    @job_handler("test.crash")
    def crash(ctx: JobContext) -> None:
        CALLS.append("crash")
        raise KeyError("secret internal detail")

    @job_handler("test.flaky")
    def flaky(ctx: JobContext) -> None:
        CALLS.append("flaky")
        raise RetryableJobError("The storage service is busy")

    @job_handler("test.gpu", cluster="gpu", cost=lambda payload: Charge(item="test_gpu_job"))
    def gpu(ctx: JobContext) -> dict:
        CALLS.append("gpu")
        return {"ok": True}

    @job_handler("test.bad_result")
    def bad_result(ctx: JobContext) -> Any:
        return ["not", "a", "dict"]

    kinds = ["test.fail", "test.crash", "test.flaky", "test.gpu", "test.bad_result"]
    yield kinds
    for kind in kinds:
        unregister(kind)
