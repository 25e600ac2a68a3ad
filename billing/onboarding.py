"""What billing adds to a new studio: the trial's GPU credits when it signs itself up (tenants.signup's
`studio_signed_up`), and the "set up payments" step of the dashboard's getting-started checklist."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from billing import connect, credits
from billing.models import CreditEntry
from tenants.access import has_role
from tenants.models import Role, Studio, User
from tenants.onboarding import Step, register_step
from tenants.signup import studio_signed_up


def grant_trial_credits(sender: Any, studio: Studio, user: User, **kwargs: Any) -> None:
    """studio_signed_up (in the sign-up's transaction and the studio's context): SIGNUP_TRIAL_CREDITS once."""
    amount = int(settings.SIGNUP_TRIAL_CREDITS)
    if amount > 0:
        credits.grant(amount=amount, kind=CreditEntry.Kind.TRIAL, reference=f"trial:{studio.pk}")


def payments_step(request: HttpRequest) -> Step:
    owner = has_role(request, [Role.OWNER])
    return Step(
        label=_("Set up payments"),
        done=connect.can_take_payments(),
        url=reverse("billing_prices") if owner else "",
        hint=_("Connect your Stripe account so your clients can buy their portraits from their gallery.")
        if owner
        else _(
            "Connect your Stripe account so your clients can buy their portraits from their gallery. "
            "The studio's owner does it."
        ),
    )


def register() -> None:
    """Called from BillingConfig.ready()."""
    studio_signed_up.connect(grant_trial_credits, dispatch_uid="billing.trial_credits")
    register_step("billing.payments", payments_step, order=40)
