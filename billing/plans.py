"""The platform's plans (settings.BILLING_PLANS) and the credit costs of GPU work (settings.BILLING_CREDITS),
read at call time.

One credit is about BILLING_CREDIT_GPU_SECONDS (default 30) seconds of a reference GPU; the default costs are
calibrated on that: training an SD 1.5 double ≈ 10 minutes = 20 credits, an SDXL one 40, one SD 1.5 image 1, one
SDXL image 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    "starter": {
        "name": "Starter",
        "price_id": "price_starter",
        "monthly_credits": 500,
        "overage_price_id": "price_overage",
        "overage_unit_price": "0.10",
        "display_price": "€49 / month",
        "overage_limit": 0,
        "currency": "eur",
    },
    "studio": {
        "name": "Studio",
        "price_id": "price_studio",
        "monthly_credits": 2000,
        "overage_price_id": "price_overage",
        "overage_unit_price": "0.08",
        "display_price": "€149 / month",
        "overage_limit": 500,
        "currency": "eur",
    },
}

DEFAULT_CREDITS: dict[str, int] = {
    "train_sd15": 20,
    "train_sdxl": 40,
    "render_image_sd15": 1,
    "render_image_sdxl": 2,
    # A group portrait, per person in it (generation.jobs.run_item_cost): the scene and each face are renders.
    "render_group_person_sd15": 1,
    "render_group_person_sdxl": 2,
}


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price_id: str
    monthly_credits: int
    overage_price_id: str
    overage_unit_price: Decimal
    display_price: str
    overage_limit: int = 0
    currency: str = "eur"


def _setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    if value in (None, ""):
        return default
    if isinstance(value, str):
        return json.loads(value)
    return value


def plans() -> dict[str, Plan]:
    out: dict[str, Plan] = {}
    for key, raw in dict(_setting("BILLING_PLANS", DEFAULT_PLANS)).items():
        out[str(key)] = Plan(
            key=str(key),
            name=str(raw.get("name") or key),
            price_id=str(raw["price_id"]),
            monthly_credits=int(raw.get("monthly_credits") or 0),
            overage_price_id=str(raw.get("overage_price_id") or ""),
            overage_unit_price=Decimal(str(raw.get("overage_unit_price") or "0")),
            display_price=str(raw.get("display_price") or ""),
            overage_limit=int(raw.get("overage_limit") or 0),
            currency=str(raw.get("currency") or "eur").lower(),
        )
    return out


def get_plan(key: str) -> Plan | None:
    return plans().get(key or "")


def plan_for_price(price_id: str) -> Plan | None:
    return next((p for p in plans().values() if p.price_id == price_id), None)


def credit_costs() -> dict[str, int]:
    return {**DEFAULT_CREDITS, **{str(k): int(v) for k, v in dict(_setting("BILLING_CREDITS", {})).items()}}


def cost(key: str, fallback: str) -> int:
    costs = credit_costs()
    return int(costs.get(key, costs.get(fallback, 1)))


def enforce_credits() -> bool:
    """Whether jobs reserve credits (and are refused without). Off in the embedded demo and in other apps' tests;
    on in production and in the billing tests."""
    return bool(getattr(settings, "BILLING_ENFORCE_CREDITS", False))


def plan_label(plan_key: str, subscription_status: str = "") -> str:
    """The studio's plan in words, the same on every page: "Starter plan", "Starter plan (past due)" or
    _("No plan yet")."""
    plan = get_plan(plan_key)
    if plan is None:
        return _("No plan yet")
    status = (subscription_status or "").replace("_", " ")
    if status and status not in ("active", "trialing"):
        return _("%(plan)s plan (%(status)s)") % {"plan": plan.name, "status": status}
    if status == "trialing":
        return _("%(plan)s plan (trial)") % {"plan": plan.name}
    return _("%(plan)s plan") % {"plan": plan.name}
