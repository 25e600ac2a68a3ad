"""The outgoing webhooks API, under /api/ inside a studio (routes in billing/api_urls.py; docs/webhooks.md):

    webhook-endpoints/                                       GET list, POST create (the answer shows the secret)
    webhook-endpoints/{webhookendpoint_id}/                  GET, PATCH, DELETE
    webhook-endpoints/{webhookendpoint_id}/roll-secret/      POST: a new secret (shown in the answer); the old one
                                                             keeps signing too for 24 hours
    webhook-deliveries/                                      GET the log, newest first (?endpoint=<id>)
    webhook-deliveries/{webhookdelivery_id}/                 GET one delivery, with its payload
    webhook-deliveries/{webhookdelivery_id}/replay/          POST: send its event again (a new delivery, 202)

Who may: reads, owners and managers (signed in) and the studio's API keys; writes, owners and managers signed in
(API keys get 403). Another studio's endpoint or delivery is a 404. A refused URL (not https in production, a
private address) is a 400 with a message for the `url` field.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from billing import webhooks_out
from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tenants.access import membership_for
from tenants.models import MANAGING_ROLES
from tenants.permissions import NO_KEYS_MESSAGE, IsStudioMember, refuse, request_api_key

ID_REGEX = r"[0-9]+"
READ_FORBIDDEN = "Only the studio's owners and managers (or its API keys) can see its webhooks."
WRITE_FORBIDDEN = "Only the studio's owners and managers can change its webhooks."
READ_ACTIONS = frozenset({"list", "retrieve"})
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class ManagersWritePermission(BasePermission):
    """Member or key (401 / 404); reads (list, retrieve): owners, managers and the studio's API keys; every other
    action: owners and managers, signed in (keys: 403). The refusals' messages are the class's."""

    read_forbidden = READ_FORBIDDEN
    write_forbidden = WRITE_FORBIDDEN

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        writing = getattr(view, "action", None) not in READ_ACTIONS
        if request_api_key(request) is not None:
            if writing:
                refuse(view, NO_KEYS_MESSAGE)
            return True
        membership = membership_for(request._request)
        if membership is None or membership.role not in MANAGING_ROLES:
            refuse(view, self.write_forbidden if writing else self.read_forbidden)
        return True


class WebhookPermission(ManagersWritePermission):
    """The webhooks API's roles (the module's docstring)."""


# --- Serializers ----------------------------------------------------------------------------------------------


class EndpointInputSerializer(serializers.Serializer):
    """The one declaration of an endpoint's input: the API and the studio page (billing/views_webhooks.py)."""

    url = serializers.URLField(max_length=500, help_text="https://… (http only where the platform allows it).")
    events = serializers.MultipleChoiceField(choices=WebhookEvent.choices, help_text="The events it receives.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "is_active",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every request (HMAC-SHA256). Keep it secret.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event_type",
            "object_ref",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "response_code",
            "response_body",
            "error",
            "duration_ms",
            "replay_of",
            "created_at",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload"]
        read_only_fields = fields


# --- Views ----------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The studio's webhook endpoints", tags=["webhooks"]),
    retrieve=extend_schema(summary="A webhook endpoint", tags=["webhooks"]),
    create=extend_schema(
        summary="Add a webhook endpoint",
        description="The answer carries the endpoint's signing secret. 400 for a URL that is refused (not https "
        "in production, a host that resolves to a private or reserved address) or an unknown event.",
        request=EndpointInputSerializer,
        responses={201: EndpointWithSecretSerializer, 400: _ERROR, 403: _ERROR, 409: _ERROR},
        tags=["webhooks"],
    ),
    partial_update=extend_schema(
        summary="Change a webhook endpoint",
        request=EndpointInputSerializer(partial=True),
        responses={200: EndpointSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
        tags=["webhooks"],
    ),
    destroy=extend_schema(summary="Delete a webhook endpoint and its log", tags=["webhooks"]),
)
class EndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = EndpointSerializer
    permission_classes = [WebhookPermission]
    lookup_url_kwarg = "webhookendpoint_id"
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhooks_out.create_endpoint(
            url=data.validated_data["url"],
            events=data.validated_data["events"],
            description=data.validated_data["description"],
            is_active=data.validated_data["is_active"],
            created_by=request.user,
        )
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint: WebhookEndpoint = self.get_object()
        data = EndpointInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        webhooks_out.update_endpoint(
            endpoint=endpoint,
            url=values.get("url"),
            events=values.get("events"),
            description=values.get("description") if "description" in request.data else None,
            is_active=values.get("is_active") if "is_active" in request.data else None,
        )
        return Response(EndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhooks_out.delete_endpoint(endpoint=instance)

    @extend_schema(
        summary="Roll the endpoint's signing secret",
        description="A new secret, in the answer. For 24 hours every request is signed with both (two `v1=` in "
        "`Studio-Signature`), so the receiver can switch without losing an event.",
        request=None,
        responses={200: EndpointWithSecretSerializer, 403: _ERROR, 404: _ERROR},
        tags=["webhooks"],
    )
    @action(detail=True, methods=["post"], url_path="roll-secret")
    def roll_secret(self, request: Request, webhookendpoint_id: str | None = None) -> Response:
        endpoint = webhooks_out.roll_secret(endpoint=self.get_object())
        return Response(EndpointWithSecretSerializer(endpoint).data)


@extend_schema_view(
    list=extend_schema(
        summary="The webhook delivery log, newest first",
        parameters=[OpenApiParameter("endpoint", int, description="Only this endpoint's deliveries.")],
        tags=["webhooks"],
    ),
    retrieve=extend_schema(
        summary="A webhook delivery with its payload", responses=DeliveryDetailSerializer, tags=["webhooks"]
    ),
)
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    permission_classes = [WebhookPermission]
    lookup_url_kwarg = "webhookdelivery_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        qs = WebhookDelivery.objects.order_by("-created_at", "-id")
        endpoint = self.request.query_params.get("endpoint", "")
        if self.action == "list" and endpoint:
            qs = qs.filter(endpoint_id=int(endpoint) if endpoint.isdigit() else 0)
        return qs

    def get_serializer_class(self) -> type:
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(
        summary="Replay a delivery's event",
        description="Sends the same event (same id, same body) to the same endpoint again, as a new delivery "
        "(202). 409 when the endpoint is disabled.",
        request=None,
        responses={202: DeliverySerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["webhooks"],
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, webhookdelivery_id: str | None = None) -> Response:
        copy = webhooks_out.replay(delivery=self.get_object())
        return Response(DeliverySerializer(copy).data, status=status.HTTP_202_ACCEPTED)
