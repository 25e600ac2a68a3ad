"""Job pages: list (paginated, constant queries), detail with live progress, cancel, retry, the demo job.
Another studio's job, or a signed-in non-member, is always 404."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from tenants.models import Role
from tests.conftest import add_member
from tests.jobs.conftest import make_job, reload

pytestmark = pytest.mark.django_db

S = Job.State


def test_the_list_shows_only_this_studios_jobs(client_a, two_tenants):
    a, b = two_tenants
    mine = make_job(a, kind="demo.countdown")
    theirs = make_job(b, kind="other.secret")
    response = client_a.get(f"{a.prefix}/jobs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/s/studio-a/jobs/{mine.pk}/"' in html
    assert "other.secret" not in html
    assert f"/jobs/{theirs.pk}/" not in html


def _list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_list_makes_no_query_per_row(client_a, tenant_a, tenant_b, django_assert_max_num_queries):
    url = f"{tenant_a.prefix}/jobs/"
    make_job(tenant_a, created_by=tenant_a.owner)
    few = _list_queries(client_a, url)
    for _ in range(20):
        make_job(tenant_a, created_by=tenant_a.owner)
    assert _list_queries(client_a, url) == few
    # studio lookup, scope settings (2), savepoint pair (2), session, user, membership, the page (no count).
    with django_assert_max_num_queries(9):
        client_a.get(url)


def test_the_list_is_paginated_by_cursor_without_a_count(client_a, tenant_a):
    import re

    with_ids = [make_job(tenant_a).pk for _ in range(27)]
    page1 = client_a.get(f"{tenant_a.prefix}/jobs/").content.decode()
    older = re.search(r'href="\?cursor=([^"]+)" rel="next">Older<', page1)
    assert older and 'rel="prev"' not in page1 and "Page 1" not in page1  # no count, no page numbers
    page2 = client_a.get(f"{tenant_a.prefix}/jobs/?cursor={older.group(1)}").content.decode()
    newest, oldest = max(with_ids), min(with_ids)
    assert f"/jobs/{newest}/" in page1 and f"/jobs/{newest}/" not in page2
    assert f"/jobs/{oldest}/" in page2 and f"/jobs/{oldest}/" not in page1
    assert 'rel="next"' not in page2
    newer = re.search(r'href="\?cursor=([^"]+)" rel="prev">Newer<', page2)
    assert newer
    assert client_a.get(f"{tenant_a.prefix}/jobs/?cursor={newer.group(1)}").content.decode().count("/jobs/") == (
        page1.count("/jobs/")
    )
    for bad in ("zzz", "e30", "eyJwIjpbMSwyXSwiYiI6MH0"):  # not base64 JSON, {}, a position of the wrong types
        response = client_a.get(f"{tenant_a.prefix}/jobs/?cursor={bad}")
        assert response.status_code == 200 and f"/jobs/{newest}/" in response.content.decode()  # the first page


def test_detail_polls_while_running_and_stops_when_finished(client_a, tenant_a):
    job = make_job(tenant_a, state=S.RUNNING, attempts=1, progress=40, progress_message="2 of 5")
    detail = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/").content.decode()
    assert f'hx-get="/s/studio-a/jobs/{job.pk}/progress/"' in detail
    assert 'hx-trigger="every 1s"' in detail
    assert 'aria-valuenow="40"' in detail and "2 of 5" in detail
    partial = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "<html" not in body and 'hx-trigger="every 1s"' in body
    from tenants.context import tenant_context

    with tenant_context(tenant_a.studio):
        Job.objects.filter(pk=job.pk).update(state=S.SUCCEEDED, progress=100, attempts=2)
    body = client_a.get(f"{tenant_a.prefix}/jobs/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in body and 'aria-valuenow="100"' in body and "Succeeded" in body
    # The details ride along out of band, so attempts and times are current too.
    assert f'id="job-{job.pk}-details" hx-swap-oob="true"' in body and "2 of " in body


def test_another_studios_job_is_404_on_every_job_url(client_a, two_tenants):
    a, b = two_tenants
    theirs = make_job(b, state=S.FAILED)
    for suffix in ("", "progress/", "cancel/", "retry/"):
        url = f"{a.prefix}/jobs/{theirs.pk}/{suffix}"
        assert client_a.get(url).status_code == 404, url
        assert client_a.post(url).status_code == 404, url
    assert reload(theirs).state == S.FAILED


def test_a_signed_in_non_member_gets_404_and_anonymous_goes_to_login(client, two_tenants):
    a, b = two_tenants
    job = make_job(a)
    client.force_login(b.owner)  # owner of B, not a member of A
    for url in (f"{a.prefix}/jobs/", f"{a.prefix}/jobs/{job.pk}/", f"{a.prefix}/jobs/{job.pk}/progress/"):
        assert client.get(url).status_code == 404
    assert client.post(f"{a.prefix}/jobs/{job.pk}/cancel/").status_code == 404
    assert reload(job).state == S.QUEUED
    client.logout()
    response = client.get(f"{a.prefix}/jobs/{job.pk}/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_cancel_by_post(client_a, tenant_a):
    job = make_job(tenant_a)
    url = f"{tenant_a.prefix}/jobs/{job.pk}/cancel/"
    assert client_a.get(url).status_code == 405
    response = client_a.post(url)
    assert response.status_code == 302 and response["Location"] == f"/s/studio-a/jobs/{job.pk}/"
    assert reload(job).state == S.CANCELLED
    again = client_a.post(url)
    assert again.status_code == 409
    assert "already cancelled; it cannot be cancelled" in again.content.decode()


def test_cancel_with_htmx_swaps_the_progress(client_a, tenant_a):
    job = make_job(tenant_a, state=S.RUNNING, attempts=1)
    response = client_a.post(f"{tenant_a.prefix}/jobs/{job.pk}/cancel/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Cancelling: the job stops at its next step." in body
    assert "cancel requested" in body and 'hx-trigger="every 1s"' in body
    assert reload(job).cancel_requested


def test_retry_by_post(client_a, tenant_a, enqueued, django_capture_on_commit_callbacks):
    job = make_job(tenant_a, state=S.FAILED, attempts=3, error="Boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(f"{tenant_a.prefix}/jobs/{job.pk}/retry/")
    assert response.status_code == 302
    assert reload(job).state == S.QUEUED
    assert enqueued.job_ids == [job.pk]
    assert client_a.post(f"{tenant_a.prefix}/jobs/{job.pk}/retry/").status_code == 409


def test_a_manager_starts_the_demo_job(client_a, tenant_a, enqueued, django_capture_on_commit_callbacks):
    page = client_a.get(f"{tenant_a.prefix}/jobs/").content.decode()
    assert 'action="/s/studio-a/jobs/start-demo/"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(f"{tenant_a.prefix}/jobs/start-demo/", {"steps": "7"})
    assert response.status_code == 302
    from tenants.context import tenant_context

    with tenant_context(tenant_a.studio):
        job = Job.objects.get()
    assert response["Location"] == f"/s/studio-a/jobs/{job.pk}/"
    assert (job.kind, job.payload["steps"], job.created_by_id) == ("demo.countdown", 7, tenant_a.owner.pk)
    assert enqueued.job_ids == [job.pk]
    assert client_a.get(f"{tenant_a.prefix}/jobs/start-demo/").status_code == 405


@pytest.mark.parametrize(
    ("steps", "message"),
    [("0", "Count at least 1 step."), ("101", "Count at most 100 steps."), ("abc", "Enter a whole number")],
)
def test_the_demo_form_refuses_bad_input(client_a, tenant_a, enqueued, steps, message):
    response = client_a.post(f"{tenant_a.prefix}/jobs/start-demo/", {"steps": steps})
    assert response.status_code == 400
    assert message in response.content.decode()
    from tenants.context import tenant_context

    with tenant_context(tenant_a.studio):
        assert not Job.objects.exists()


def test_staff_cannot_start_the_demo_and_do_not_see_the_form(client, tenant_a):
    staff = add_member(tenant_a, "staff@studio-a.example", Role.STAFF)
    client.force_login(staff)
    page = client.get(f"{tenant_a.prefix}/jobs/")
    assert page.status_code == 200 and "start-demo" not in page.content.decode()
    assert client.post(f"{tenant_a.prefix}/jobs/start-demo/", {"steps": "3"}).status_code == 404


def test_the_recent_jobs_tag_renders_this_studios_jobs(two_tenants, rf):
    from django.template import Context, Template

    from tenants.context import tenant_context

    a, b = two_tenants
    mine = make_job(a, kind="mine.kind", progress=30)
    make_job(b, kind="theirs.kind")
    template = Template("{% load jobs_tags %}{% recent_jobs 5 %}")
    from django.urls import set_urlconf

    set_urlconf("studio_saas.urls_studio")
    try:
        with tenant_context(a.studio):
            html = template.render(Context({}))
    finally:
        set_urlconf(None)
    assert "mine.kind" in html and "theirs.kind" not in html
    assert f"/jobs/{mine.pk}/" in html and 'aria-valuenow="30"' in html
    assert "hx-trigger" not in html  # the dashboard's list does not poll
