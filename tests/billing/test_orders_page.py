"""The studio's Orders page (billing/orders/) and refunds from it: every member sees the orders, newest first, in a
fixed number of queries; owners and managers refund a paid order at the (fake) Stripe, and the `charge.refunded`
webhook revokes its downloads; other roles get 403, refusals 409, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from billing.models import Order
from galleries.models import Entitlement
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import buy, deliver_all, shop
from tests.conftest import add_member, expected_queries
from tests.galleries.test_public_support import private_storage_fixture, text  # noqa: F401  (fixtures)

# Session, user, studio, membership, middleware's own; then the orders page: count (paginator) and one query for
# the orders with gallery, client and portrait count. The same for 1 order and 7. Two of the middleware's own (the
# tenant setting's reset and its SET LOCAL) run on PostgreSQL only (see expected_queries).
QUERIES = expected_queries(postgresql=10, sqlite=8)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def _order(tenant: Any, pk: int) -> Order:
    with tenant_context(tenant.studio):
        return Order.objects.get(pk=pk)


def _active(tenant: Any, order: Order) -> int:
    with tenant_context(tenant.studio):
        return Entitlement.objects.filter(source="order", order_ref=str(order.pk), revoked_at__isnull=True).count()


def paid_order(buyer: Client, fake: Any, tenant: Any, scene: Any, portraits: list) -> Order:
    response = buy(buyer, scene, portraits)
    assert response.status_code == 303, response.content
    session_id = response["Location"].rsplit("/", 1)[-1]
    with tenant_context(tenant.studio):
        order = Order.objects.get(checkout_session_id=session_id)
    fake.complete(session_id)
    deliver_all(buyer, fake)
    return _order(tenant, order.pk)


def _staff(tenant: Any, role: str = Role.OWNER) -> Client:
    staff = Client()
    staff.force_login(tenant.owner if role == Role.OWNER else add_member(tenant, f"{role}@x.example", role))
    return staff


def test_the_orders_page_lists_the_orders_newest_first_and_refunds_a_paid_one(
    client: Client, two_tenants: Any, fake_stripe: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    first = paid_order(client, fake_stripe, a, scene, scene.portraits[:2])
    pending = buy(client, scene, scene.portraits[2:3])
    assert pending.status_code == 303
    staff = _staff(a)
    page = text(staff.get(f"{a.prefix}/billing/orders/"))
    assert page.index(f'id="order-{first.pk + 1}"') < page.index(f'id="order-{first.pk}"')  # newest first
    assert "Waiting for payment" in page and '<td class="order-status">Paid</td>' in page
    assert scene.gallery.title in page and "19.80 EUR" in page and "9.90 EUR" in page
    assert page.count(">Refund</button>") == 1  # the paid order only
    assert f"/billing/orders/{first.pk}/refund/" in page
    # The billing page and the price sheet link to it.
    assert f"{a.prefix}/billing/orders/" in text(staff.get(f"{a.prefix}/billing/prices/"))

    response = staff.post(f"{a.prefix}/billing/orders/{first.pk}/refund/", follow=True)
    assert "Refund requested: the downloads stop when Stripe confirms it." in text(response)
    [refund] = fake_stripe.recorded("/v1/refunds")
    assert refund.idempotency_key and refund.params["payment_intent"] == first.payment_intent_id
    assert _order(a, first.pk).status == Order.Status.PAID and _active(a, first) == 2  # until Stripe confirms
    deliver_all(client, fake_stripe)
    order = _order(a, first.pk)
    assert order.status == Order.Status.REFUNDED and order.refunded_at is not None
    assert _active(a, order) == 0
    page = text(staff.get(f"{a.prefix}/billing/orders/"))
    assert ">Refund</button>" not in page and "Refunded" in page

    # Refused once refunded: 409 with a message, nothing more at Stripe.
    again = staff.post(f"{a.prefix}/billing/orders/{first.pk}/refund/")
    assert again.status_code == 409 and "already refunded" in text(again)
    assert len(fake_stripe.recorded("/v1/refunds")) == 1


def test_a_pending_order_cant_be_refunded(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe)
    buy(client, scene, scene.portraits[:1])
    with tenant_context(a.studio):
        order = Order.objects.get()
    response = _staff(a, Role.MANAGER).post(f"{a.prefix}/billing/orders/{order.pk}/refund/")
    assert response.status_code == 409 and "Only a paid order can be refunded." in text(response)
    assert fake_stripe.recorded("/v1/refunds") == [] and _order(a, order.pk).status == Order.Status.PENDING


def test_a_photographer_sees_the_orders_but_cant_refund(client: Client, two_tenants: Any, fake_stripe: Any) -> None:
    a, b = two_tenants
    scene = shop(a, fake_stripe)
    order = paid_order(client, fake_stripe, a, scene, scene.portraits[:1])
    photographer = _staff(a, Role.PHOTOGRAPHER)
    page = text(photographer.get(f"{a.prefix}/billing/orders/"))
    assert "Paid" in page and ">Refund</button>" not in page
    response = photographer.post(f"{a.prefix}/billing/orders/{order.pk}/refund/")
    assert response.status_code == 403 and "Only the studio's owners and managers can refund" in text(response)
    assert fake_stripe.recorded("/v1/refunds") == [] and _order(a, order.pk).status == Order.Status.PAID
    # Another studio's owner: the order doesn't exist there.
    other = _staff(b)
    assert other.post(f"{b.prefix}/billing/orders/{order.pk}/refund/").status_code == 404
    assert 'id="order-' not in text(other.get(f"{b.prefix}/billing/orders/"))


def test_the_orders_page_takes_a_fixed_number_of_queries(
    client: Client, two_tenants: Any, fake_stripe: Any, django_assert_num_queries: Any
) -> None:
    a, _ = two_tenants
    scene = shop(a, fake_stripe, count=6)
    buy(client, scene, scene.portraits[:1])
    staff = _staff(a)
    url = f"{a.prefix}/billing/orders/"
    staff.get(url)  # warm caches (session, studio)
    with django_assert_num_queries(QUERIES):
        assert staff.get(url).status_code == 200
    for portrait in scene.portraits[1:]:
        buy(client, scene, [portrait])
    buy(client, scene, scene.portraits[:3])
    with django_assert_num_queries(QUERIES):
        page = text(staff.get(url))
    assert page.count('id="order-') == 7
