"""The billing API (read-only, plus refunds), under /api/ inside a studio (routes in billing/api_urls.py):

    billing/                        GET: plan (key, name), subscription status and period, credits, usage by day
    orders/                         GET: the studio's orders, newest first (paginated)
    orders/{order_id}/              GET: an order with its items
    orders/{order_id}/refund/       POST: ask Stripe to refund a paid order (202; the webhook revokes downloads)

Who may (tenants/permissions.py decides who is a member; 401 anonymous, 404 non-members):
- read: owners and managers (signed in) and the studio's API keys; other roles get 403 with a message;
- refund: owners and managers, signed in (API keys never do what needs an owner or manager: 403).
Another studio's order is a 404 whatever the method and the caller. Refusals (not paid, already refunded) are
409 with a message, and change nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import credits, plans, subscriptions
from billing.models import Order, OrderItem
from billing.views_orders import REFUND_FORBIDDEN, REFUND_REQUESTED, order_list, request_refund
from tenants.access import membership_for
from tenants.models import MANAGING_ROLES
from tenants.permissions import NO_KEYS_MESSAGE, IsStudioMember, refuse, request_api_key

ID_REGEX = r"[0-9]+"
READ_FORBIDDEN = "Only the studio's owners and managers (or its API keys) can see its billing."
#: Who may read the studio's billing (plan, credits, orders) through the API, and its sales figures on the
#: dashboard (billing/dashboard.py). The billing and orders pages are open to every member.
BILLING_READ_ROLES = MANAGING_ROLES
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class BillingPermission(BasePermission):
    """Member or key (401 / 404); reads: owners, managers and keys; refunds: owners and managers, signed in.
    A refusal is 404 when the URL names an order the studio lacks, else 403 with a message."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        writing = getattr(view, "action", None) == "refund"
        if request_api_key(request) is not None:
            if writing:
                refuse(view, NO_KEYS_MESSAGE)
            return True
        membership = membership_for(request._request)
        if membership is None or membership.role not in (MANAGING_ROLES if writing else BILLING_READ_ROLES):
            refuse(view, REFUND_FORBIDDEN if writing else READ_FORBIDDEN)
        return True


# --- Serializers ----------------------------------------------------------------------------------------------


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    used = serializers.IntegerField(help_text="Credits used that day.")


class BillingSerializer(serializers.Serializer):
    plan = serializers.CharField(allow_null=True, help_text="The plan's key (settings.BILLING_PLANS); null: none.")
    plan_name = serializers.CharField(allow_null=True)
    subscription_status = serializers.CharField(help_text="Stripe's status, as last seen; empty: no subscription.")
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    credits_balance = serializers.IntegerField()
    usage = UsageDaySerializer(many=True, help_text="Credits used per day, last 30 days (days with use only).")


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["id", "portrait", "size", "unit_price"]


class OrderSerializer(serializers.ModelSerializer):
    # null once the client was erased (the order stays, anonymised, as a financial record)
    gallery_title = serializers.CharField(source="gallery.title", read_only=True, allow_null=True)
    client = serializers.IntegerField(source="gallery.client_id", read_only=True, allow_null=True)
    client_name = serializers.CharField(source="gallery.client.name", read_only=True, allow_null=True)
    portrait_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "gallery",
            "gallery_title",
            "client",
            "client_name",
            "currency",
            "amount",
            "application_fee",
            "portrait_count",
            "email",
            "created_at",
            "paid_at",
            "refunded_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    items = OrderItemSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "items"]
        read_only_fields = fields


class RefundSerializer(serializers.Serializer):
    refund = serializers.CharField(help_text="Stripe's refund id.")
    message = serializers.CharField()
    order = OrderSerializer()


# --- Views ----------------------------------------------------------------------------------------------------


class BillingView(APIView):
    permission_classes = [BillingPermission]

    @extend_schema(
        summary="The studio's plan, subscription, credits and usage",
        responses={200: BillingSerializer, 403: _ERROR},
        tags=["billing"],
    )
    def get(self, request: Request) -> Response:
        row = subscriptions.get_billing()
        plan = plans.get_plan(row.plan)
        data = {
            "plan": plan.key if plan else None,
            "plan_name": plan.name if plan else None,
            "subscription_status": row.subscription_status,
            "current_period_start": row.current_period_start,
            "current_period_end": row.current_period_end,
            "credits_balance": credits.balance(billing=row),
            "usage": credits.usage_by_day(days=30),
        }
        return Response(BillingSerializer(data).data)


@extend_schema_view(
    list=extend_schema(summary="The studio's orders, newest first", tags=["billing"]),
    retrieve=extend_schema(summary="An order with its items", tags=["billing"], responses=OrderDetailSerializer),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    permission_classes = [BillingPermission]
    lookup_url_kwarg = "order_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Order]:
        qs = order_list()
        if getattr(self, "action", None) == "retrieve":
            qs = qs.prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
        return qs

    def get_serializer_class(self) -> type:
        return OrderDetailSerializer if self.action == "retrieve" else OrderSerializer

    @extend_schema(
        summary="Refund a paid order",
        description="Asks Stripe for a full refund (reversing the transfer and the fee; idempotent per order). "
        "The order turns refunded and its downloads stop when Stripe's `charge.refunded` webhook arrives. 409 "
        "for an order not paid or already refunded; 502 when Stripe fails; 503 when Stripe is not configured "
        "(nothing is sent).",
        request=None,
        responses={202: RefundSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR, 502: _ERROR, 503: _ERROR},
        tags=["billing"],
    )
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, order_id: str | None = None) -> Response:
        order: Order = self.get_object()
        refund_id = request_refund(order)  # a CheckoutRefused is answered by the API's error handler
        data = {"refund": refund_id, "message": REFUND_REQUESTED, "order": order}
        return Response(RefundSerializer(data).data, status=status.HTTP_202_ACCEPTED)
