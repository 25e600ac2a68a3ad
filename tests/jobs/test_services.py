"""Job actions: the state machine of enqueue / cancel / retry, and enqueueing only on commit."""

from __future__ import annotations

import pytest
from django.conf import settings

from jobs import services
from jobs.models import TERMINAL_STATES, TRANSITIONS, Job
from jobs.registry import UnknownJobKind
from tenants.context import TenantContextMissing, no_tenant_context, tenant_context
from tests.jobs.conftest import make_job, reload

pytestmark = pytest.mark.django_db

S = Job.State


def test_transition_table_is_the_documented_state_machine():
    assert TRANSITIONS[S.QUEUED] == {S.RUNNING, S.CANCELLED, S.FAILED}
    assert TRANSITIONS[S.RUNNING] == {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.QUEUED}
    assert TRANSITIONS[S.SUCCEEDED] == set()
    # A finished job only goes back to the queue (manual retry), and never from success.
    for state in TERMINAL_STATES - {S.SUCCEEDED}:
        assert TRANSITIONS[state] == {S.QUEUED}
    assert set(TRANSITIONS) == set(S)
    job = Job(state=S.SUCCEEDED)
    assert not job.can_transition(S.QUEUED)
    assert Job(state=S.FAILED).can_transition(S.QUEUED)


def test_enqueue_creates_a_queued_job_in_the_current_studio_and_enqueues_on_commit(
    two_tenants, enqueued, django_capture_on_commit_callbacks
):
    a, b = two_tenants
    with tenant_context(a.studio), django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.enqueue_job(kind="demo.countdown", payload={"steps": 2}, user=a.owner)
        assert enqueued.calls == []  # nothing is sent before the transaction commits
    assert len(callbacks) == 1
    assert job.studio_id == a.studio.pk
    assert (job.state, job.progress, job.attempts, job.cluster) == (S.QUEUED, 0, 0, "default")
    assert job.created_by == a.owner
    assert job.max_attempts == 3  # settings.JOB_MAX_ATTEMPTS
    [(args, kwargs)] = enqueued.calls
    assert args == ("jobs.tasks.run_job", job.pk, a.studio.pk)
    assert kwargs["cluster"] == settings.Q_QUEUES["default"]  # the site's queue ("default", unless prefixed)
    with tenant_context(b.studio):
        assert not Job.objects.filter(pk=job.pk).exists()


def test_enqueue_rolled_back_sends_nothing(tenant_a, enqueued, django_capture_on_commit_callbacks):
    from django.db import transaction

    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.enqueue_job(kind="demo.countdown")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert not Job.objects.exists()
    assert callbacks == []
    assert enqueued.calls == []


def test_enqueue_needs_a_studio_and_a_known_kind(tenant_a, settings):
    with no_tenant_context(), pytest.raises(TenantContextMissing):
        services.enqueue_job(kind="demo.countdown")
    with tenant_context(tenant_a.studio):
        with pytest.raises(UnknownJobKind, match="nope"):
            services.enqueue_job(kind="nope")
        with pytest.raises(ValueError, match="JSON object"):
            services.enqueue_job(kind="demo.countdown", payload=["x"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="JSON values"):
            services.enqueue_job(kind="demo.countdown", payload={"x": object()})
        with pytest.raises(ValueError, match="max_attempts"):
            services.enqueue_job(kind="demo.countdown", max_attempts=0)
        settings.JOB_MAX_ATTEMPTS = 7
        assert services.enqueue_job(kind="demo.countdown").max_attempts == 7
        assert services.enqueue_job(kind="demo.countdown", max_attempts=1).max_attempts == 1


def test_cancel_a_queued_job_cancels_it_at_once(two_tenants):
    a, _ = two_tenants
    job = make_job(a)
    with tenant_context(a.studio):
        services.cancel_job(job=job)
    assert job.state == S.CANCELLED and job.finished_at is not None
    assert reload(job).state == S.CANCELLED


def test_cancel_a_running_job_only_requests_it(tenant_a):
    job = make_job(tenant_a, state=S.RUNNING, attempts=1)
    with tenant_context(tenant_a.studio):
        services.cancel_job(job=job)
        services.cancel_job(job=job)  # asking twice is fine
    fresh = reload(job)
    assert (fresh.state, fresh.cancel_requested, fresh.finished_at) == (S.RUNNING, True, None)
    assert not fresh.can_cancel


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_cancel_a_finished_job_is_refused_with_a_clear_message(tenant_a, state):
    job = make_job(tenant_a, state=state)
    with tenant_context(tenant_a.studio), pytest.raises(services.JobStateError, match="cannot be cancelled"):
        services.cancel_job(job=job)
    assert reload(job).state == state


@pytest.mark.parametrize("state", [S.FAILED, S.CANCELLED])
def test_retry_queues_a_failed_or_cancelled_job_again_on_commit(
    tenant_a, state, enqueued, django_capture_on_commit_callbacks
):
    job = make_job(tenant_a, state=state, attempts=3, max_attempts=3, error="Boom", progress=40, cancel_requested=True)
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        services.retry_job(job=job, user=tenant_a.owner)
        assert enqueued.calls == []
    fresh = reload(job)
    assert (fresh.state, fresh.attempts, fresh.progress, fresh.error, fresh.cancel_requested) == (
        S.QUEUED,
        0,
        0,
        "",
        False,
    )
    assert fresh.finished_at is None
    assert enqueued.job_ids == [job.pk]


@pytest.mark.parametrize("state", [S.QUEUED, S.RUNNING, S.SUCCEEDED])
def test_retry_is_refused_for_other_states(tenant_a, state, enqueued, django_capture_on_commit_callbacks):
    job = make_job(tenant_a, state=state)
    with (
        tenant_context(tenant_a.studio),
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(services.JobStateError, match="Only failed or cancelled"),
    ):
        services.retry_job(job=job)
    assert reload(job).state == state
    assert enqueued.calls == []


def test_gpu_kinds_go_to_the_gpu_queue(tenant_a, test_kinds, enqueued, django_capture_on_commit_callbacks):
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        job = services.enqueue_job(kind="test.gpu")
    assert job.cluster == "gpu"
    assert enqueued.calls[0][1]["cluster"] == services.queue_name("gpu") == f"{settings.Q_CLUSTER_PREFIX}-gpu"


def test_queue_names_follow_the_site_prefix():
    """Issue 13, finding 3: every queue of a site is named from Q_CLUSTER_PREFIX, the gpu one included (it was
    always `gpu`, shared by every site on one Redis); `Q_CLUSTER_NAME=gpu qcluster` serves this site's."""
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, os; from studio_saas import settings as s; "
        "print(json.dumps([s.Q_QUEUES, s.Q_CLUSTER['name'], list(s.Q_CLUSTER['ALT_CLUSTERS']), "
        "os.environ.get('Q_CLUSTER_NAME')]))"
    )
    env = {**os.environ, "Q_CLUSTER_PREFIX": "site-x", "Q_CLUSTER_NAME": "gpu"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    queues, name, alt, cluster_name = json.loads(out.stdout.strip().splitlines()[-1])
    assert queues == {"default": "site-x", "gpu": "site-x-gpu"}
    assert (name, alt, cluster_name) == ("site-x", ["site-x-gpu"], "site-x-gpu")


def test_queue_name_reads_the_queues_setting(settings):
    settings.Q_QUEUES = {"default": "site-x", "gpu": "site-x-gpu"}
    assert services.queue_name("default") == "site-x"
    assert services.queue_name("gpu") == "site-x-gpu"
    with pytest.raises(ValueError):
        services.queue_name("nope")
