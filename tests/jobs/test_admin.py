"""Jobs in the studio admin: read-only rows, a cancel action, scoped to the studio."""

import pytest

from jobs.models import Job
from jobs.services import enqueue_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def _job(tenant):
    with tenant_context(tenant.studio):
        return enqueue_job(kind="demo.countdown", payload={"steps": 2}, user=tenant.owner)


def test_owner_cancels_queued_jobs_from_the_admin(client_a, two_tenants):
    a, b = two_tenants
    mine, theirs = _job(a), _job(b)
    url = f"{a.prefix}/admin/jobs/job/"
    response = client_a.get(url)
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]
    response = client_a.post(url, {"action": "cancel_selected", "_selected_action": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    with tenant_context(a.studio):
        assert Job.objects.get(pk=mine.pk).state == Job.State.CANCELLED
    with tenant_context(b.studio):
        assert Job.objects.get(pk=theirs.pk).state == Job.State.QUEUED


def test_jobs_are_read_only_in_the_admin(client_a, tenant_a):
    job = _job(tenant_a)
    change = f"{tenant_a.prefix}/admin/jobs/job/{job.pk}/change/"
    assert client_a.get(change).status_code == 200
    assert client_a.get(f"{tenant_a.prefix}/admin/jobs/job/add/").status_code == 403
    client_a.post(change, {"kind": "other", "state": "succeeded"})
    with tenant_context(tenant_a.studio):
        assert Job.objects.get(pk=job.pk).kind == "demo.countdown"


def test_staff_see_jobs_but_cannot_cancel(client, tenant_a):
    job = _job(tenant_a)
    client.force_login(add_member(tenant_a, "staff@studio-a.example", Role.STAFF))
    url = f"{tenant_a.prefix}/admin/jobs/job/"
    assert client.get(url).status_code == 200
    client.post(url, {"action": "cancel_selected", "_selected_action": [job.pk]})
    with tenant_context(tenant_a.studio):
        assert Job.objects.get(pk=job.pk).state == Job.State.QUEUED
