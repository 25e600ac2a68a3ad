"""The studio's billing page: plan, status, period, credits left, usage by day, invoices (from Stripe), change plan,
payment method (Stripe's hosted Billing Portal). Every member can look; owners and managers act (others: 403)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from billing import credits, plans, stripe_client, subscriptions
from tenants.access import has_role, studio_member_required
from tenants.models import MANAGING_ROLES

ACT_MESSAGE = gettext_lazy("Only the studio's owners and managers can change its plan or payment method.")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/studio/forbidden.html", {"current": "billing", "message": ACT_MESSAGE}, status=403)


@studio_member_required
@require_GET
def billing(request: HttpRequest) -> HttpResponse:
    row = subscriptions.get_billing()
    invoices, invoices_error = [], ""
    try:
        invoices = subscriptions.invoices(billing=row)
    except subscriptions.BillingError as exc:
        invoices_error = exc.message
    usage = credits.usage_by_day(days=30)
    context = {
        "current": "billing",
        "billing": row,
        "plan": plans.get_plan(row.plan),
        "plan_label": plans.plan_label(row.plan, row.subscription_status),
        "plans": list(plans.plans().values()),
        "balance": credits.balance(billing=row),
        "usage": usage,
        "usage_max": max([u["used"] for u in usage] + [1]),
        "invoices": invoices,
        "invoices_error": invoices_error,
        "can_act": has_role(request, MANAGING_ROLES),
        "enforced": plans.enforce_credits(),
        "stripe_ready": stripe_client.is_configured(),
        "stripe_hint": _(stripe_client.SETUP_HINT),
    }
    return render(request, "billing/studio/billing.html", context)


@studio_member_required
@require_POST
def change_plan(request: HttpRequest) -> HttpResponse:
    if not has_role(request, MANAGING_ROLES):
        return _forbidden(request)
    try:
        subscriptions.subscribe(studio=request.studio, plan_key=request.POST.get("plan", ""), email=request.user.email)
    except subscriptions.BillingError as exc:
        messages.error(request, exc.message)
        return redirect("billing")
    messages.success(request, _("Your plan was updated. Its credits are added when Stripe confirms the payment."))
    return redirect("billing")


@studio_member_required
@require_POST
def payment_method(request: HttpRequest) -> HttpResponse:
    if not has_role(request, MANAGING_ROLES):
        return _forbidden(request)
    try:
        url = subscriptions.portal_url(return_url=request.build_absolute_uri(reverse("billing")))
    except subscriptions.BillingError as exc:
        messages.error(request, exc.message)
        return redirect("billing")
    return redirect(url)
