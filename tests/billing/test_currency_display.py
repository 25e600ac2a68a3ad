"""Prices show their currency everywhere: the templates' prices (a lower app's pages) in the currency of the
studio's price sheet, through `studio_currency` (billing.context_processors) and tenants' `money` filter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import PriceSheet
from templates_app.models import TemplateVersion
from tenants.context import tenant_context
from tenants.models import Role
from tenants.templatetags.studio_tags import money
from tests.conftest import add_member
from tests.templates_app.factories import make_template

pytestmark = pytest.mark.django_db


def test_money_formats_an_amount_with_its_currency():
    assert money(Decimal("12"), "eur") == "€12.00"
    assert money("9.9", "usd") == "$9.90"
    assert money(Decimal("9.90")) == "9.90"
    assert money(None, "eur") == ""


def test_template_prices_show_the_price_sheets_currency(client_a, tenant_a):
    with tenant_context(tenant_a.studio):
        template = make_template(tenant_a)
        TemplateVersion.objects.filter(pk=template.current_version_id).update(price_per_image=Decimal("9.90"))
    listing = client_a.get(f"{tenant_a.prefix}/templates/").content.decode()
    assert "€9.90" in listing  # the price sheet's default currency, before the studio sets one
    with tenant_context(tenant_a.studio):
        PriceSheet.objects.update_or_create(defaults={"currency": "gbp"})
    assert "£9.90" in client_a.get(f"{tenant_a.prefix}/templates/").content.decode()
    client_a.force_login(add_member(tenant_a, "desk@studio-a.example", Role.STAFF))  # sees the settings read-only
    assert "£9.90" in client_a.get(f"{tenant_a.prefix}/templates/{template.pk}/").content.decode()
