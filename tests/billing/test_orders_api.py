"""The billing API: GET billing/, orders/, orders/{id}/ and POST orders/{id}/refund/. Owners, managers and API keys
read; owners and managers (signed in) refund; photographers get 403; another studio's order is 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from billing.models import CreditEntry, Order
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import buy, deliver_all, shop
from tests.billing.test_orders_page import _active, _order, _staff, paid_order
from tests.galleries.test_public_support import private_storage_fixture  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _key(tenant: Any) -> dict[str, str]:
    from tenants.api_keys import create_api_key

    with tenant_context(tenant.studio):
        _, raw = create_api_key(name="shop", created_by=tenant.owner)
    return {"Authorization": f"Api-Key {raw}"}


def test_billing_summary(two_tenants: Any, settings: Any) -> None:
    a, _ = two_tenants
    with tenant_context(a.studio):
        CreditEntry.objects.create(kind=CreditEntry.Kind.GRANT, amount=100, reference="p1")
        CreditEntry.objects.create(kind=CreditEntry.Kind.RESERVE, amount=-7)
    data = _staff(a).get(f"{a.prefix}/api/billing/").json()
    assert data["plan"] is None and data["plan_name"] is None and data["subscription_status"] == ""
    assert data["credits_balance"] == 93 and [u["used"] for u in data["usage"]] == [7]
    assert Client().get(f"{a.prefix}/api/billing/", headers=_key(a)).json()["credits_balance"] == 93
    response = _staff(a, Role.PHOTOGRAPHER).get(f"{a.prefix}/api/billing/")
    assert response.status_code == 403 and response.json()["error"]["message"]
    assert Client().get(f"{a.prefix}/api/billing/").status_code == 401


def test_orders_list_detail_and_refund(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, b = two_tenants
    scene = shop(a, fake_stripe)
    order = paid_order(client, fake_stripe, a, scene, scene.portraits[:2])
    buy(client, scene, scene.portraits[2:3])
    staff = _staff(a)
    listed = staff.get(f"{a.prefix}/api/orders/").json()
    assert [o["status"] for o in listed["results"]] == ["pending", "paid"]
    assert listed["results"][1]["amount"] == "19.80" and listed["results"][1]["portrait_count"] == 2
    assert listed["results"][1]["gallery_title"] == scene.gallery.title
    detail = staff.get(f"{a.prefix}/api/orders/{order.pk}/").json()
    assert [i["portrait"] for i in detail["items"]] == [p.pk for p in scene.portraits[:2]]
    assert detail["paid_at"] and detail["refunded_at"] is None

    # API keys read, never refund; photographers neither.
    key = _key(a)
    assert Client().get(f"{a.prefix}/api/orders/{order.pk}/", headers=key).status_code == 200
    assert Client().post(f"{a.prefix}/api/orders/{order.pk}/refund/", headers=key).status_code == 403
    photographer = _staff(a, Role.PHOTOGRAPHER)
    assert photographer.get(f"{a.prefix}/api/orders/").status_code == 403
    assert photographer.post(f"{a.prefix}/api/orders/{order.pk}/refund/").status_code == 403
    # Another studio's order: 404 for its owner and its key.
    other = _staff(b)
    assert other.get(f"{b.prefix}/api/orders/{order.pk}/").status_code == 404
    assert other.post(f"{b.prefix}/api/orders/{order.pk}/refund/").status_code == 404
    assert Client().post(f"{b.prefix}/api/orders/{order.pk}/refund/", headers=_key(b)).status_code == 404
    assert fake_stripe.recorded("/v1/refunds") == []

    response = staff.post(f"{a.prefix}/api/orders/{order.pk}/refund/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["refund"] in fake_stripe.refunds and body["order"]["status"] == "paid"
    assert "downloads stop when Stripe confirms" in body["message"]
    deliver_all(client, fake_stripe)
    assert _order(a, order.pk).status == Order.Status.REFUNDED and _active(a, order) == 0
    again = staff.post(f"{a.prefix}/api/orders/{order.pk}/refund/")
    assert again.status_code == 409 and "already refunded" in again.json()["error"]["message"]
    with tenant_context(a.studio):
        pending = Order.objects.get(status=Order.Status.PENDING)
    refused = staff.post(f"{a.prefix}/api/orders/{pending.pk}/refund/")
    assert refused.status_code == 409 and refused.json()["error"]["message"] == "Only a paid order can be refunded."
    assert len(fake_stripe.recorded("/v1/refunds")) == 1
