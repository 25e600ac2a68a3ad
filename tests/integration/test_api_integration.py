"""A whole integration through the API alone, with an API key (issue 20, "done means"): the studio's other tool
adds a client, records the consent collected by staff, makes a photo set and uploads the photos (multipart),
waits for the check, trains the digital double, starts a run of a published template, picks a portrait, makes
the gallery from the run's picks and shares it; the studio's webhook endpoint (registered by its owner) receives
each step, signed. The real jobs run in order in this process (tiny model, CPU); the webhook receiver is a real
HTTP server on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import webhooks_out
from billing.models import WebhookEvent
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.billing.test_outgoing_webhooks import Receiver, verify
from tests.clients.conftest import variants
from tests.conftest import Tenant
from tests.generation.runs_support import make_template
from tests.jobs.conftest import Enqueued

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


def _run_jobs(tenant: Tenant, queue: Enqueued, capture: Any) -> list[str]:
    """Run every job sent so far (and those they send), in order, as the workers would (what a job sends after
    its commit is sent: the test runs inside one transaction)."""
    done = []
    while queue.calls:
        args, _ = queue.calls.pop(0)
        with capture(execute=True):
            done.append(run_job(args[1], tenant.studio.pk))
    return done


def test_an_integration_drives_the_whole_flow_with_an_api_key_and_hears_every_step(
    client: Any,
    tenant_a: Tenant,
    settings: Any,
    receiver: Receiver,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.tenants.factories import make_api_key

    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    settings.ENGINE_TRAIN_STEPS = 4
    settings.INTAKE_MIN_PHOTOS = 10
    template, _ = make_template(tenant_a, "Business", images_per_run=2)
    with tenant_context(tenant_a.studio):
        key = make_api_key(tenant_a)
        endpoint = webhooks_out.create_endpoint(
            url=receiver.url, events=[e.value for e in WebhookEvent], description="CRM", created_by=tenant_a.owner
        )
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    api = f"{tenant_a.prefix}/api"

    def call(method: str, path: str, body: Any = None, status: int = 200, multipart: bool = False) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            if method == "get":
                response = client.get(f"{api}/{path}", headers=headers)
            elif multipart:
                response = client.post(f"{api}/{path}", body, headers=headers)  # multipart
            else:
                response = getattr(client, method)(
                    f"{api}/{path}", json.dumps(body or {}), content_type="application/json", headers=headers
                )
        assert response.status_code == status, (path, response.status_code, response.content[:500])
        return response.json()

    # The client, their consent (collected by the studio's staff), a photo set and ten photos.
    person = call("post", "clients/", {"name": "Bea Client", "email": "bea@example.com"}, status=201)
    call("post", f"clients/{person['id']}/consent/")
    photo_set = call("post", f"clients/{person['id']}/photo-sets/", status=201)
    set_path = f"clients/{person['id']}/photo-sets/{photo_set['id']}/"
    files = [SimpleUploadedFile(name, data, "image/jpeg") for name, data in variants("person_a_01.jpg").items()]
    files += [SimpleUploadedFile(name, data, "image/jpeg") for name, data in variants("person_a_02.jpg").items()]
    uploaded = call("post", f"{set_path}photos/", {"files": files}, status=201, multipart=True)
    assert len(uploaded["photos"]) == 10 and uploaded["validation_job_id"]
    assert set(_run_jobs(tenant_a, enqueued, django_capture_on_commit_callbacks)) == {
        "succeeded"
    }  # the check of the set, then its webhook
    assert call("get", set_path)["readiness"]["can_train"] is True

    # The digital double: trained by the real job.
    trained = call("post", "doubles/", {"photo_set": photo_set["id"]}, status=202)
    double_id = trained["double"]["id"]
    assert set(_run_jobs(tenant_a, enqueued, django_capture_on_commit_callbacks)) == {"succeeded"}
    assert call("get", f"doubles/{double_id}/")["status"] == "ready"

    # A run of the published template, a pick, the gallery of the run's picks, shared with the client.
    run = call("post", "runs/", {"double": double_id, "items": [{"template": template.pk, "count": 2}]}, status=201)
    assert set(_run_jobs(tenant_a, enqueued, django_capture_on_commit_callbacks)) == {"succeeded"}
    portraits = call("get", f"portraits/?run={run['id']}")["results"]
    assert len(portraits) == 2
    call("post", f"portraits/{portraits[0]['id']}/pick/")
    gallery = call("post", "galleries/", {"client": person["id"], "run": run["id"]}, status=201)
    call("post", f"galleries/{gallery['id']}/share/")
    _run_jobs(tenant_a, enqueued, django_capture_on_commit_callbacks)

    # The studio's tool heard each step, in order, each signed with the endpoint's secret.
    heard = [(headers_, body) for headers_, body in receiver.requests]
    events = [json.loads(body)["type"] for _, body in heard]
    assert events == ["photo_set.validated", "double.ready", "run.finished", "gallery.shared"], events
    for request_headers, body in heard:
        assert verify(request_headers["studio-signature"], body, endpoint.secret)
    shared = json.loads(heard[-1][1])["data"]["object"]
    assert shared["id"] == gallery["id"]
    assert "bea@example.com" not in b"".join(body for _, body in heard).decode()
