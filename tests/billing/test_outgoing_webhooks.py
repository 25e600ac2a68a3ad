"""Outgoing webhooks (issue 20, billing/webhooks_out.py) against a real HTTP receiver on loopback: the signature
checks out with the recipe of docs/webhooks.md, a 500 is tried again with backoff, deliveries of one object keep
their order, replay sends the same event again, private addresses are refused (on save and at send time), the
secret rolls with a 24-hour overlap, payloads carry no photo, and another studio's endpoints are 404."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from billing import webhook_events, webhooks_out
from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from jobs.services import queue_name
from jobs.tasks import run_job
from tenants.context import tenant_context
from tenants.models import Role
from tests.conftest import Tenant, add_member
from tests.jobs import conftest as jobs_fixtures
from tests.jobs.conftest import Enqueued

pytestmark = pytest.mark.django_db

enqueued = jobs_fixtures.enqueued  # a fixture: the jobs' enqueue recorder


# --- The receiver -----------------------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with the next status of `statuses` (200
    once they run out)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"receiver broke")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def loopback_allowed(settings: Any) -> Any:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    return settings


# --- The documented recipe (docs/webhooks.md) -------------------------------------------------------------------


def verify(header: str, body: bytes, secret: str, tolerance: int = 300) -> bool:
    import time

    parts = [p.split("=", 1) for p in header.split(",")]
    timestamp = next(v for k, v in parts if k == "t")
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


# --- Helpers ----------------------------------------------------------------------------------------------------


def _endpoint(tenant: Tenant, url: str, events: list[str] | None = None) -> WebhookEndpoint:
    with tenant_context(tenant.studio):
        return webhooks_out.create_endpoint(
            url=url, events=events or list(WebhookEvent.values), created_by=tenant.owner
        )


def _emit(tenant: Tenant, capture: Any, object_ref: str = "order:1", **data: Any) -> list[int]:
    with tenant_context(tenant.studio), capture(execute=True), transaction.atomic():
        return webhooks_out.emit(
            event_type=WebhookEvent.ORDER_PAID, object_ref=object_ref, data={"object": "order", **data}
        )


def _run_jobs(tenant: Tenant, enqueued: Enqueued) -> list[str]:
    """Run every job sent so far (and those their runs send), in order."""
    results = []
    while enqueued.calls:
        args, _ = enqueued.calls.pop(0)
        results.append(run_job(args[1], tenant.studio.pk))
    return results


def _delivery(tenant: Tenant, pk: int) -> WebhookDelivery:
    with tenant_context(tenant.studio):
        return WebhookDelivery.objects.get(pk=pk)


def _sweep(capture: Any, at: Any) -> int:
    with capture(execute=True):
        return webhooks_out.send_due(now=at)


# --- Tests ------------------------------------------------------------------------------------------------------


def test_an_event_is_sent_after_commit_signed_with_the_documented_recipe(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint = _endpoint(tenant_a, receiver.url, [WebhookEvent.ORDER_PAID])
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks() as callbacks:
        webhooks_out.emit(event_type=WebhookEvent.ORDER_PAID, object_ref="order:9", data={"id": 9})
        webhooks_out.emit(event_type=WebhookEvent.GALLERY_VIEWED, object_ref="gallery:1", data={"id": 1})
        assert not receiver.requests and not enqueued.calls  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert len(enqueued.calls) == 1  # the endpoint did not choose gallery.viewed
    assert enqueued.calls[0][1]["cluster"] == queue_name("default")
    assert _run_jobs(tenant_a, enqueued) == ["succeeded"]

    ((headers, body),) = receiver.requests
    assert verify(headers["studio-signature"], body, endpoint.secret)
    assert not verify(headers["studio-signature"], body, "whsec_wrong")
    assert not verify(headers["studio-signature"], body + b" ", endpoint.secret)
    assert headers["studio-signature"].count("v1=") == 1
    payload = json.loads(body)
    assert payload["type"] == "order.paid" and payload["data"]["object"] == {"id": 9}
    assert payload["studio"] == tenant_a.studio.slug
    assert headers["studio-event-id"] == payload["id"] and headers["content-type"] == "application/json"
    with tenant_context(tenant_a.studio):
        delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.response_code == 200
    assert delivery.response_body == "ok" and delivery.attempts == 1 and delivery.duration_ms is not None


def test_a_500_is_tried_again_with_backoff_until_it_is_delivered(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _endpoint(tenant_a, receiver.url)
    receiver.statuses = [500, 503]
    (pk,) = _emit(tenant_a, django_capture_on_commit_callbacks)
    start = timezone.now()
    _run_jobs(tenant_a, enqueued)
    delivery = _delivery(tenant_a, pk)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.response_code == 500
    assert delivery.response_body == "receiver broke" and delivery.attempts == 1
    wait = delivery.next_attempt_at - start
    assert timedelta(seconds=55) < wait < timedelta(seconds=65)  # 1 minute

    assert _sweep(django_capture_on_commit_callbacks, start + timedelta(seconds=30)) == 0  # not due yet
    assert _sweep(django_capture_on_commit_callbacks, delivery.next_attempt_at) == 1
    _run_jobs(tenant_a, enqueued)
    delivery = _delivery(tenant_a, pk)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.response_code == 503
    assert timedelta(minutes=4) < delivery.next_attempt_at - start < timedelta(minutes=6)  # then 5 minutes

    assert _sweep(django_capture_on_commit_callbacks, delivery.next_attempt_at) == 1
    _run_jobs(tenant_a, enqueued)
    delivery = _delivery(tenant_a, pk)
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert len({json.loads(body)["id"] for _, body in receiver.requests}) == 1  # the same event each time


def test_the_backoff_lasts_more_than_a_day_then_the_delivery_fails() -> None:
    assert sum(webhooks_out.BACKOFF, timedelta()) > timedelta(days=1)
    assert list(webhooks_out.BACKOFF) == sorted(webhooks_out.BACKOFF)
    assert len(webhooks_out.BACKOFF) + 1 == webhooks_out.MAX_ATTEMPTS


def test_a_delivery_that_fails_every_time_fails_after_the_last_attempt(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _endpoint(tenant_a, receiver.url)
    receiver.statuses = [500] * webhooks_out.MAX_ATTEMPTS
    (pk,) = _emit(tenant_a, django_capture_on_commit_callbacks)
    _run_jobs(tenant_a, enqueued)
    for _ in range(webhooks_out.MAX_ATTEMPTS - 1):
        delivery = _delivery(tenant_a, pk)
        assert delivery.status == WebhookDelivery.Status.PENDING
        _sweep(django_capture_on_commit_callbacks, delivery.next_attempt_at)
        _run_jobs(tenant_a, enqueued)
    delivery = _delivery(tenant_a, pk)
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == webhooks_out.MAX_ATTEMPTS
    assert delivery.next_attempt_at is None and len(receiver.requests) == webhooks_out.MAX_ATTEMPTS


def test_deliveries_of_one_object_keep_their_order(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _endpoint(tenant_a, receiver.url)
    receiver.statuses = [500]  # the first event of order 1 fails once
    (first,) = _emit(tenant_a, django_capture_on_commit_callbacks, "order:1", step=1)
    (second,) = _emit(tenant_a, django_capture_on_commit_callbacks, "order:1", step=2)
    (other,) = _emit(tenant_a, django_capture_on_commit_callbacks, "order:2", step=3)
    _run_jobs(tenant_a, enqueued)
    assert [b["data"]["object"]["step"] for b in receiver.bodies()] == [1, 3]  # 2 waits behind 1
    assert _delivery(tenant_a, second).status == WebhookDelivery.Status.PENDING
    assert _delivery(tenant_a, other).status == WebhookDelivery.Status.DELIVERED

    _sweep(django_capture_on_commit_callbacks, _delivery(tenant_a, first).next_attempt_at)
    with django_capture_on_commit_callbacks(execute=True):
        _run_jobs(tenant_a, enqueued)  # the first is delivered and wakes the second at once
    _run_jobs(tenant_a, enqueued)
    assert [b["data"]["object"]["step"] for b in receiver.bodies()] == [1, 3, 1, 2]
    assert _delivery(tenant_a, first).status == WebhookDelivery.Status.DELIVERED
    assert _delivery(tenant_a, second).status == WebhookDelivery.Status.DELIVERED


def test_replay_sends_the_same_event_again_from_the_log(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _endpoint(tenant_a, receiver.url)
    (pk,) = _emit(tenant_a, django_capture_on_commit_callbacks)
    _run_jobs(tenant_a, enqueued)
    staff = Client()
    staff.force_login(tenant_a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"{tenant_a.prefix}/billing/webhooks/deliveries/{pk}/replay/")
    assert response.status_code == 302
    _run_jobs(tenant_a, enqueued)
    (h1, b1), (h2, b2) = receiver.requests
    assert b1 == b2 and h1["studio-event-id"] == h2["studio-event-id"]
    assert h1["studio-delivery-id"] != h2["studio-delivery-id"]
    with tenant_context(tenant_a.studio):
        replay = WebhookDelivery.objects.exclude(pk=pk).get()
    assert replay.replay_of_id == pk and replay.status == WebhookDelivery.Status.DELIVERED

    with django_capture_on_commit_callbacks(execute=True):  # and through the API
        response = staff.post(f"{tenant_a.prefix}/api/webhook-deliveries/{pk}/replay/")
    assert response.status_code == 202 and response.json()["replay_of"] == pk
    _run_jobs(tenant_a, enqueued)
    assert len(receiver.requests) == 3


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_private_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not webhooks_out.is_public_address(address)


def test_public_addresses_are(settings: Any) -> None:
    assert webhooks_out.is_public_address("93.184.216.34")
    assert webhooks_out.is_public_address("2606:4700:4700::1111")


def test_private_addresses_are_refused_on_save_with_the_production_setting(tenant_a: Tenant, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    settings.PRODUCTION = True
    for url in [
        "https://127.0.0.1/hooks",
        "https://localhost:8443/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://10.0.0.8/x",
    ]:
        with pytest.raises(webhooks_out.WebhookError) as refused:
            _endpoint(tenant_a, url)
        assert "private or reserved address" in refused.value.message
        assert refused.value.fields and "url" in refused.value.fields
    with pytest.raises(webhooks_out.WebhookError, match="https"):
        _endpoint(tenant_a, "http://93.184.216.34/hooks")
    with pytest.raises(webhooks_out.WebhookError):
        _endpoint(tenant_a, "ftp://93.184.216.34/hooks")
    with tenant_context(tenant_a.studio):
        assert not WebhookEndpoint.objects.exists()

    staff = Client()
    staff.force_login(tenant_a.owner)
    response = staff.post(
        f"{tenant_a.prefix}/api/webhook-endpoints/",
        {"url": "https://127.0.0.1/x", "events": ["order.paid"]},
        content_type="application/json",
    )
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]
    response = staff.post(
        f"{tenant_a.prefix}/billing/webhooks/", {"url": "https://127.0.0.1/x", "events": ["order.paid"]}
    )
    assert response.status_code == 400 and b"private or reserved address" in response.content


def test_a_private_address_is_refused_at_send_time_too(
    tenant_a: Tenant,
    receiver: Receiver,
    settings: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    _endpoint(tenant_a, receiver.url)  # saved while allowed (or its name resolved elsewhere then)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    (pk,) = _emit(tenant_a, django_capture_on_commit_callbacks)
    _run_jobs(tenant_a, enqueued)
    assert receiver.requests == []
    delivery = _delivery(tenant_a, pk)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.response_code is None
    assert "private or reserved address" in delivery.error


def test_rolling_the_secret_signs_with_both_for_a_day(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint = _endpoint(tenant_a, receiver.url)
    old = endpoint.secret
    staff = Client()
    staff.force_login(tenant_a.owner)
    response = staff.post(f"{tenant_a.prefix}/api/webhook-endpoints/{endpoint.pk}/roll-secret/")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old and new.startswith("whsec_")
    _emit(tenant_a, django_capture_on_commit_callbacks)
    _run_jobs(tenant_a, enqueued)
    headers, body = receiver.requests[-1]
    assert headers["studio-signature"].count("v1=") == 2
    assert verify(headers["studio-signature"], body, new) and verify(headers["studio-signature"], body, old)

    with tenant_context(tenant_a.studio):  # a day later
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
    _emit(tenant_a, django_capture_on_commit_callbacks, "order:2")
    _run_jobs(tenant_a, enqueued)
    headers, body = receiver.requests[-1]
    assert headers["studio-signature"].count("v1=") == 1
    assert verify(headers["studio-signature"], body, new) and not verify(headers["studio-signature"], body, old)


def test_payloads_carry_ids_and_links_never_photos_names_or_emails(
    tenant_a: Tenant,
    receiver: Receiver,
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from billing.models import Order
    from galleries.signals import gallery_shared
    from tests.billing.factories import make_order

    _endpoint(tenant_a, receiver.url)
    with tenant_context(tenant_a.studio):
        order = make_order(tenant_a)
        order.email = "buyer@private.example"
        order.status, order.paid_at = Order.Status.PAID, timezone.now()
        order.save()
        gallery = order.gallery
        client = gallery.client
        client.email = "client@private.example"
        client.save()
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            webhook_events.order_paid(order)
            gallery_shared.send(sender=type(gallery), gallery=gallery, shared_at=timezone.now())  # the real signal
    _run_jobs(tenant_a, enqueued)
    bodies = receiver.bodies()
    assert {b["type"] for b in bodies} == {"order.paid", "gallery.shared"}
    text = b"".join(body for _, body in receiver.requests).decode()
    for secret in [
        client.name,
        client.email,
        order.email,
        "/media/",
        ".jpg",
        ".png",
        ".webp",
        "thumbnail",
        "lora",
        "centroid",
        "photo_url",
        "image",
    ]:
        assert secret not in text
    paid = next(b for b in bodies if b["type"] == "order.paid")["data"]["object"]
    assert paid["id"] == order.pk and paid["status"] == "paid" and paid["url"].endswith(f"/api/orders/{order.pk}/")


def test_another_studios_endpoints_and_deliveries_are_404(
    two_tenants: tuple[Tenant, Tenant],
    loopback_allowed: Any,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = two_tenants
    theirs = _endpoint(b, "http://127.0.0.1:9/b")
    (their_delivery,) = _emit(b, django_capture_on_commit_callbacks)
    mine = _endpoint(a, "http://127.0.0.1:9/a")
    staff = Client()
    staff.force_login(a.owner)
    api = f"{a.prefix}/api"
    assert [e["id"] for e in staff.get(f"{api}/webhook-endpoints/").json()["results"]] == [mine.pk]
    assert staff.get(f"{api}/webhook-deliveries/").json()["results"] == []
    assert staff.get(f"{api}/webhook-endpoints/{theirs.pk}/").status_code == 404
    assert (
        staff.patch(
            f"{api}/webhook-endpoints/{theirs.pk}/", {"is_active": False}, content_type="application/json"
        ).status_code
        == 404
    )
    assert staff.delete(f"{api}/webhook-endpoints/{theirs.pk}/").status_code == 404
    assert staff.post(f"{api}/webhook-endpoints/{theirs.pk}/roll-secret/").status_code == 404
    assert staff.get(f"{api}/webhook-deliveries/{their_delivery}/").status_code == 404
    assert staff.post(f"{api}/webhook-deliveries/{their_delivery}/replay/").status_code == 404
    assert staff.get(f"{a.prefix}/billing/webhooks/{theirs.pk}/").status_code == 404
    assert staff.post(f"{a.prefix}/billing/webhooks/{theirs.pk}/roll-secret/").status_code == 404
    assert staff.post(f"{a.prefix}/billing/webhooks/deliveries/{their_delivery}/replay/").status_code == 404
    with tenant_context(b.studio):
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.is_active and endpoint.secret == theirs.secret
        assert WebhookDelivery.objects.count() == 1


def test_the_api_manages_endpoints_for_owners_and_managers_only(tenant_a: Tenant, loopback_allowed: Any) -> None:
    staff = Client()
    staff.force_login(tenant_a.owner)
    api = f"{tenant_a.prefix}/api/webhook-endpoints/"
    response = staff.post(
        api,
        {"url": "http://127.0.0.1:9/x", "events": ["order.paid", "run.finished"], "description": "CRM"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_") and created["events"] == ["run.finished", "order.paid"]
    assert "secret" not in staff.get(f"{api}{created['id']}/").json()
    response = staff.patch(f"{api}{created['id']}/", {"is_active": False}, content_type="application/json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert response.json()["description"] == "CRM"
    response = staff.post(api, {"url": "http://127.0.0.1:9/x", "events": ["nope"]}, content_type="application/json")
    assert response.status_code == 400

    photographer = Client()
    photographer.force_login(add_member(tenant_a, "ph@a.example", Role.PHOTOGRAPHER))
    assert photographer.get(api).status_code == 403
    assert photographer.get(f"{tenant_a.prefix}/billing/webhooks/").status_code == 404
    assert staff.delete(f"{api}{created['id']}/").status_code == 204
    with tenant_context(tenant_a.studio):
        assert not WebhookEndpoint.objects.exists()


def test_the_studio_page_adds_edits_rolls_and_deletes_an_endpoint(tenant_a: Tenant, loopback_allowed: Any) -> None:
    staff = Client()
    staff.force_login(tenant_a.owner)
    page = f"{tenant_a.prefix}/billing/webhooks/"
    assert staff.get(page).status_code == 200
    response = staff.post(page, {"url": "http://127.0.0.1:9/x", "events": ["order.paid"], "is_active": "on"})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["order.paid"] and endpoint.created_by == tenant_a.owner
    response = staff.get(response["Location"])
    assert response.status_code == 200 and endpoint.secret.encode() in response.content
    response = staff.post(
        f"{page}{endpoint.pk}/", {"url": "http://127.0.0.1:9/y", "events": ["order.paid", "client.erased"]}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        endpoint.refresh_from_db()
    assert endpoint.url.endswith("/y") and not endpoint.is_active and "client.erased" in endpoint.events
    old = endpoint.secret
    assert staff.post(f"{page}{endpoint.pk}/roll-secret/").status_code == 302
    with tenant_context(tenant_a.studio):
        endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert b"previous-secret" in staff.get(f"{page}{endpoint.pk}/").content
    assert staff.post(f"{page}{endpoint.pk}/delete/").status_code == 302
    with tenant_context(tenant_a.studio):
        assert not WebhookEndpoint.objects.exists()
    assert b"webhooks-link" in staff.get(f"{tenant_a.prefix}/api-keys/").content


def test_the_events_of_the_apps_below_reach_the_endpoints(
    tenant_a: Tenant, loopback_allowed: Any, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    from clients.services import VALIDATE_SET_KIND, erase_client
    from generation.doubles import RUN_ITEM_KIND, TRAIN_KIND
    from jobs.models import Job
    from jobs.services import job_ended
    from tests.clients.factories import make_client, make_photo_set
    from tests.generation.factories import make_double, make_render_run_item

    _endpoint(tenant_a, "http://127.0.0.1:9/all")
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        photo_set = make_photo_set(tenant_a)
        job_ended(
            Job.objects.create(
                kind=VALIDATE_SET_KIND, state=Job.State.SUCCEEDED, payload={"photo_set_id": photo_set.pk}
            )
        )
        double = make_double(tenant_a)
        for state in (Job.State.SUCCEEDED, Job.State.FAILED):
            job_ended(Job.objects.create(kind=TRAIN_KIND, state=state, payload={"double_id": double.pk}))
        item = make_render_run_item(tenant_a)
        Job.objects.filter(pk=item.job_id).update(kind=RUN_ITEM_KIND, state=Job.State.SUCCEEDED)
        job_ended(Job.objects.get(pk=item.job_id))
        client = make_client(tenant_a)
        erased_id = client.pk
        names = [client.name, client.email, double.client.name, double.client.email]
        erase_client(client=client, performed_by=tenant_a.owner)
        deliveries = {d.event_type: d.payload for d in WebhookDelivery.objects.order_by("id")}
    assert set(deliveries) == {
        "photo_set.validated",
        "double.ready",
        "double.failed",
        "run.finished",
        "client.erased",
    }
    assert deliveries["photo_set.validated"]["data"]["object"]["id"] == photo_set.pk
    assert deliveries["double.ready"]["data"]["object"]["status"] == "ready"
    assert deliveries["double.failed"]["data"]["object"]["status"] == "failed"
    run = deliveries["run.finished"]["data"]["object"]
    assert run["id"] == item.run_id and run["status"] == "done" and run["items_succeeded"] == 1
    assert deliveries["client.erased"]["data"]["object"]["id"] == erased_id
    text = json.dumps(deliveries)
    for secret in names:
        assert secret not in text
    assert len(enqueued.calls) == 5  # one job per delivery, sent on commit


def test_an_event_rolled_back_sends_nothing(
    tenant_a: Tenant, loopback_allowed: Any, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    _endpoint(tenant_a, "http://127.0.0.1:9/x")
    with tenant_context(tenant_a.studio), django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            webhooks_out.emit(event_type=WebhookEvent.ORDER_PAID, object_ref="order:1", data={"id": 1})
            raise RuntimeError("the order's transaction failed")
        assert not WebhookDelivery.objects.exists()
    assert enqueued.calls == []


def test_api_keys_read_the_webhooks_but_cannot_change_them(tenant_a: Tenant, loopback_allowed: Any) -> None:
    from tenants.api_keys import create_api_key

    endpoint = _endpoint(tenant_a, "http://127.0.0.1:9/x")
    with tenant_context(tenant_a.studio):
        _, raw = create_api_key(name="crm", created_by=tenant_a.owner)
    key = Client(headers={"Authorization": f"Api-Key {raw}"})
    api = f"{tenant_a.prefix}/api"
    listed = key.get(f"{api}/webhook-endpoints/").json()["results"]
    assert [e["id"] for e in listed] == [endpoint.pk] and "secret" not in listed[0]
    assert key.get(f"{api}/webhook-deliveries/").status_code == 200
    assert key.post(f"{api}/webhook-endpoints/{endpoint.pk}/roll-secret/").status_code == 403
    response = key.post(
        f"{api}/webhook-endpoints/",
        {"url": "http://127.0.0.1:9/y", "events": ["order.paid"]},
        content_type="application/json",
    )
    assert response.status_code == 403
