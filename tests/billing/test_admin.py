"""Gallery orders, coupons and sales in a studio's admin: read-only, to owners and managers, their studio's rows
only (another studio's object: tests/test_isolation.py over every admin URL)."""

from __future__ import annotations

import pytest

from billing.models import Coupon, GallerySale, Order, PrintFulfilment
from tenants.context import tenant_context
from tenants.models import Role
from tests.billing import factories
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

MODELS = (Order, Coupon, GallerySale)


def _url(tenant, model, suffix=""):  # noqa: ANN001, ANN202
    return f"{tenant.prefix}/admin/billing/{model._meta.model_name}/{suffix}"


def test_the_owner_looks_up_an_order_with_its_lines_and_fulfilment_read_only(client_a, two_tenants):
    a, b = two_tenants
    with tenant_context(a.studio):
        fulfilment = factories.make_print_fulfilment(a)
        coupon, sale = factories.make_coupon(a), factories.make_gallery_sale(a)
    with tenant_context(b.studio):
        theirs = factories.make_print_fulfilment(b).order
    order = fulfilment.order

    listing = client_a.get(_url(a, Order))
    assert listing.status_code == 200
    rows = list(listing.context["cl"].result_list)
    assert order in rows and theirs not in rows
    assert all(row.studio_id == a.studio.pk for row in rows)
    assert b"Add order" not in listing.content  # made by Checkout, never by hand

    page = client_a.get(_url(a, Order, f"{order.pk}/change/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Lustre 20×30" in html  # the line, as sold
    assert str(PrintFulfilment.Status.PLACED.label) in html
    assert 'name="_save"' not in html  # read-only: no save button
    assert client_a.post(_url(a, Order, f"{order.pk}/change/"), {"status": "refunded"}).status_code == 403
    assert client_a.post(_url(a, Order, f"{order.pk}/delete/"), {"post": "yes"}).status_code == 403
    with tenant_context(a.studio):
        assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING

    for model, row in ((Coupon, coupon), (GallerySale, sale)):
        response = client_a.get(_url(a, model))
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [row]
        assert client_a.get(_url(a, model, "add/")).status_code == 403


@pytest.mark.parametrize("role", [Role.PHOTOGRAPHER, Role.STAFF])
def test_money_is_not_shown_to_photographers_or_front_desk_staff(client, two_tenants, role):
    a, _ = two_tenants
    with tenant_context(a.studio):
        factories.make_order(a)
    client.force_login(add_member(a, f"{role}@a.example.com", role))
    index = client.get(f"{a.prefix}/admin/")
    assert index.status_code == 200
    names = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert not names & {"Order", "Coupon", "GallerySale"}
    for model in MODELS:
        assert client.get(_url(a, model)).status_code == 403
