"""The jobs API: list / retrieve with progress, cancel and retry actions; another studio's id is 404."""

from __future__ import annotations

import pytest

from jobs.models import Job
from tests.jobs.conftest import make_job, reload

pytestmark = pytest.mark.django_db

S = Job.State

FIELDS = {
    "id",
    "kind",
    "state",
    "progress",
    "progress_message",
    "error",
    "attempts",
    "max_attempts",
    "cluster",
    "cancel_requested",
    "is_terminal",
    "result",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
}


def test_list_and_retrieve_show_progress(client_a, two_tenants, django_assert_max_num_queries):
    a, b = two_tenants
    job = make_job(a, state=S.RUNNING, attempts=1, progress=60, progress_message="3 of 5", created_by=a.owner)
    for _ in range(5):
        make_job(a, created_by=a.owner)
    make_job(b)
    with django_assert_max_num_queries(10):
        response = client_a.get(f"{a.prefix}/api/jobs/")
    assert response.status_code == 200
    data = response.json()
    assert "count" not in data and data["next"] is None and data["previous"] is None  # a cursor page, no count
    assert len(data["results"]) == 6
    assert data["results"][0]["id"] > data["results"][-1]["id"]  # newest first
    one = client_a.get(f"{a.prefix}/api/jobs/{job.pk}/").json()
    assert set(one) == FIELDS
    assert (one["state"], one["progress"], one["progress_message"], one["is_terminal"]) == (
        "running",
        60,
        "3 of 5",
        False,
    )
    assert one["created_by"] == a.owner.email


def test_the_list_holds_only_this_studios_jobs(client_a, two_tenants):
    a, b = two_tenants
    mine = {make_job(a).pk for _ in range(3)}
    theirs = make_job(b)
    ids = {row["id"] for row in client_a.get(f"{a.prefix}/api/jobs/").json()["results"]}
    assert ids == mine and theirs.pk not in ids


def test_another_studios_job_is_404(client_a, two_tenants):
    a, b = two_tenants
    theirs = make_job(b)
    for method, suffix in (("get", ""), ("post", "cancel/"), ("post", "retry/")):
        response = getattr(client_a, method)(f"{a.prefix}/api/jobs/{theirs.pk}/{suffix}")
        assert response.status_code == 404, suffix
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert reload(theirs).state == S.QUEUED
    assert client_a.get(f"{a.prefix}/api/jobs/not-a-number/").status_code == 404


def test_cancel_action(client_a, tenant_a):
    queued = make_job(tenant_a)
    response = client_a.post(f"{tenant_a.prefix}/api/jobs/{queued.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    running = make_job(tenant_a, state=S.RUNNING, attempts=1)
    data = client_a.post(f"{tenant_a.prefix}/api/jobs/{running.pk}/cancel/").json()
    assert (data["state"], data["cancel_requested"]) == ("running", True)
    done = client_a.post(f"{tenant_a.prefix}/api/jobs/{queued.pk}/cancel/")
    assert done.status_code == 409
    assert done.json()["error"]["message"] == "This job has already cancelled; it cannot be cancelled."
    assert client_a.get(f"{tenant_a.prefix}/api/jobs/{running.pk}/cancel/").status_code == 405


def test_retry_action(client_a, tenant_a, enqueued, django_capture_on_commit_callbacks):
    failed = make_job(tenant_a, state=S.FAILED, attempts=3, error="Boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(f"{tenant_a.prefix}/api/jobs/{failed.pk}/retry/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["error"]) == ("queued", "")
    assert enqueued.job_ids == [failed.pk]
    assert client_a.post(f"{tenant_a.prefix}/api/jobs/{failed.pk}/retry/").status_code == 409


def test_non_members_and_anonymous_are_refused(client, two_tenants):
    a, b = two_tenants
    job = make_job(a)
    assert client.get(f"{a.prefix}/api/jobs/{job.pk}/").status_code == 401
    client.force_login(b.owner)
    response = client.get(f"{a.prefix}/api/jobs/{job.pk}/")
    assert response.status_code == 404
    assert client.post(f"{a.prefix}/api/jobs/{job.pk}/cancel/").status_code == 404
    assert client.get(f"{a.prefix}/api/jobs/").status_code == 404
    assert reload(job).state == S.QUEUED
