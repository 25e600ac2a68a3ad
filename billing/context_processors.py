"""`studio_currency` for every studio page: the currency of the studio's price sheet (upper case, e.g. "EUR"),
read only when a template uses it (`{{ price|money:studio_currency }}`, tenants' studio_tags), so that pages of
lower apps (templates' prices) show the currency without importing billing."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def _currency() -> str:
    from billing.models import PriceSheet

    code = PriceSheet.objects.values_list("currency", flat=True).first()
    return (code or PriceSheet._meta.get_field("currency").default).upper()


def currency(request: HttpRequest) -> dict[str, Any]:
    if getattr(request, "studio", None) is None:
        return {}
    return {"studio_currency": SimpleLazyObject(_currency)}
