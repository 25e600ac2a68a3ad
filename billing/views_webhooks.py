"""The studio's outgoing webhooks page at /billing/webhooks/ (owners and managers; other members get 404 like
non-members): endpoints (add, edit, delete, roll the secret), the delivery log with the answers' codes, and a
Replay button. The endpoint's secret is shown to owners and managers on its edit page (they configure the
receiver with it), never on the list or in the log. Linked from the API keys page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from billing import webhooks_out
from billing.api_webhooks import EndpointInputSerializer
from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tenants.access import manager_required, require_http_methods_of

LOG_SIZE = 50


def _get_endpoint(webhookendpoint_id: int, **kwargs: Any) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=webhookendpoint_id)


def _get_delivery(webhookdelivery_id: int, **kwargs: Any) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery, pk=webhookdelivery_id)


def _form_data(request: HttpRequest) -> dict[str, Any]:
    return {
        "url": request.POST.get("url", ""),
        "events": request.POST.getlist("events"),
        "description": request.POST.get("description", ""),
        "is_active": request.POST.get("is_active") == "on",
    }


def _errors(serializer: EndpointInputSerializer) -> list[str]:
    return [str(message) for messages_ in serializer.errors.values() for message in messages_]


def _save(request: HttpRequest, endpoint: WebhookEndpoint | None) -> tuple[WebhookEndpoint | None, list[str]]:
    serializer = EndpointInputSerializer(data=_form_data(request))
    if not serializer.is_valid():
        return None, _errors(serializer)
    values = serializer.validated_data
    try:
        if endpoint is None:
            endpoint = webhooks_out.create_endpoint(
                url=values["url"],
                events=values["events"],
                description=values["description"],
                is_active=values["is_active"],
                created_by=request.user,
            )
        else:
            webhooks_out.update_endpoint(
                endpoint=endpoint,
                url=values["url"],
                events=values["events"],
                description=values["description"],
                is_active=values["is_active"],
            )
    except webhooks_out.WebhookError as exc:
        return None, [exc.message]
    return endpoint, []


def _context(**extra: Any) -> dict[str, Any]:
    return {"current": "billing", "event_choices": WebhookEvent.choices, **extra}


@manager_required
@require_http_methods(["GET", "HEAD", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    """The endpoints and the log; POST adds an endpoint."""
    errors: list[str] = []
    form = {"url": "", "events": [], "description": "", "is_active": True}
    if request.method == "POST":
        endpoint, errors = _save(request, None)
        if endpoint is not None:
            messages.success(request, _("Endpoint added. Its signing secret is on its page."))
            return redirect("webhook_endpoint", webhookendpoint_id=endpoint.pk)
        form = _form_data(request)
    endpoints = list(WebhookEndpoint.objects.order_by("-created_at", "-id"))
    log = list(WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")[:LOG_SIZE])
    context = _context(endpoints=endpoints, deliveries=log, form=form, errors=errors)
    return render(request, "billing/studio/webhooks.html", context, status=400 if errors else 200)


@manager_required
@require_http_methods_of(_get_endpoint, ["GET", "HEAD", "POST"])
def webhook_endpoint(request: HttpRequest, webhookendpoint_id: int) -> HttpResponse:
    """One endpoint: edit it, see its secret and its deliveries."""
    endpoint = _get_endpoint(webhookendpoint_id)
    errors: list[str] = []
    form = {
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "is_active": endpoint.is_active,
    }
    if request.method == "POST":
        saved, errors = _save(request, endpoint)
        if saved is not None:
            messages.success(request, _("Endpoint saved."))
            return redirect("webhook_endpoint", webhookendpoint_id=endpoint.pk)
        form = _form_data(request)
        endpoint.refresh_from_db()
    log = list(endpoint.deliveries.order_by("-created_at", "-id")[:LOG_SIZE])
    context = _context(
        endpoint=endpoint,
        deliveries=log,
        form=form,
        errors=errors,
        signing_secrets=webhooks_out.signing_secrets(endpoint),
    )
    return render(request, "billing/studio/webhook_endpoint.html", context, status=400 if errors else 200)


@manager_required
@require_http_methods_of(_get_endpoint, ["POST"])
def webhook_endpoint_delete(request: HttpRequest, webhookendpoint_id: int) -> HttpResponse:
    webhooks_out.delete_endpoint(endpoint=_get_endpoint(webhookendpoint_id))
    messages.success(request, _("Endpoint deleted, with its log."))
    return redirect("webhooks")


@manager_required
@require_http_methods_of(_get_endpoint, ["POST"])
def webhook_endpoint_roll(request: HttpRequest, webhookendpoint_id: int) -> HttpResponse:
    endpoint = webhooks_out.roll_secret(endpoint=_get_endpoint(webhookendpoint_id))
    messages.success(request, _("New secret made. The previous one keeps signing too for 24 hours."))
    return redirect("webhook_endpoint", webhookendpoint_id=endpoint.pk)


@manager_required
@require_http_methods_of(_get_delivery, ["POST"])
def webhook_delivery_replay(request: HttpRequest, webhookdelivery_id: int) -> HttpResponse:
    delivery = _get_delivery(webhookdelivery_id)
    try:
        webhooks_out.replay(delivery=delivery)
    except webhooks_out.WebhookError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The event will be sent again in a moment."))
    if request.POST.get("next") == "endpoint":
        return redirect("webhook_endpoint", webhookendpoint_id=delivery.endpoint_id)
    return redirect("webhooks")
