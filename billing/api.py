"""The billing API, under /api/ inside a studio (routes in billing/api_urls.py; the price sheet and packages are in
billing/api_prices.py, coupons and sales in billing/api_coupons.py, webhooks in billing/api_webhooks.py):

    billing/                        GET: plan (key, name), subscription status and period, credits, usage by day
    orders/                         GET: the studio's orders, newest first (paginated)
    orders/{order_id}/              GET: an order with its items
    orders/{order_id}/refund/       POST: ask Stripe to refund a paid order (202; the webhook revokes downloads)
    orders/{order_id}/fulfilment/   POST: move a print order on (in production, shipped with tracking, delivered)
    print-products/                 GET list, POST create: the prints on the studio's price sheet
    print-products/{printproduct_id}/   GET, PATCH (a product is turned off with is_active=false, never deleted)

Who may (tenants/permissions.py decides who is a member; 401 anonymous, 404 non-members):
- read: owners and managers (signed in) and the studio's API keys; other roles get 403 with a message;
- refund: owners and managers, signed in (API keys never do what needs an owner or manager: 403);
- fulfilment: owners, managers and staff (signed in), and API keys (the studio's shipping tool marks orders
  shipped);
- print products: read like orders; write owners and managers, signed in.
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
from billing import fulfilment as fulfilment_service
from billing import prints as print_service
from billing.models import Order, OrderItem, PrintFulfilment, PrintProduct
from billing.views_orders import (
    FULFIL_FORBIDDEN,
    FULFILMENT_ROLES,
    REFUND_FORBIDDEN,
    REFUND_REQUESTED,
    order_list,
    request_refund,
)
from tenants.access import membership_for
from tenants.media import signed_media_url
from tenants.models import MANAGING_ROLES
from tenants.permissions import NO_KEYS_MESSAGE, IsStudioMember, refuse, request_api_key

ID_REGEX = r"[0-9]+"
READ_FORBIDDEN = "Only the studio's owners and managers (or its API keys) can see its billing."
#: Who may read the studio's billing (plan, credits, orders) through the API, and its sales figures on the
#: dashboard (billing/dashboard.py). The billing and orders pages are open to every member.
BILLING_READ_ROLES = MANAGING_ROLES
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class BillingPermission(BasePermission):
    """Member or key (401 / 404); reads: owners, managers and keys; refunds and print products' changes: owners
    and managers, signed in; fulfilment: owners, managers, staff and keys. A refusal is 404 when the URL names an
    object the studio lacks, else 403 with a message."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        action_ = getattr(view, "action", None)
        fulfilling = action_ == "fulfilment"
        writing = not fulfilling and action_ not in ("list", "retrieve", None)
        if request_api_key(request) is not None:
            if writing:
                refuse(view, NO_KEYS_MESSAGE)
            return True
        membership = membership_for(request._request)
        roles = FULFILMENT_ROLES if fulfilling else MANAGING_ROLES if writing else BILLING_READ_ROLES
        if membership is None or membership.role not in roles:
            message = FULFIL_FORBIDDEN if fulfilling else getattr(view, "write_forbidden", REFUND_FORBIDDEN)
            refuse(view, message if (fulfilling or writing) else READ_FORBIDDEN)
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
    print_file = serializers.SerializerMethodField(
        help_text="A print's print-ready file (JPEG, 300 dpi, sRGB): a signed link for the caller, expiring; "
        "null until it is made, and for a download."
    )

    class Meta:
        model = OrderItem
        fields = ["id", "portrait", "size", "unit_price", "product", "product_name", "quantity", "crop", "print_size"]
        fields = [*fields, "print_file"]

    def get_print_file(self, item: OrderItem) -> str | None:
        if not item.print_file:
            return None
        request = self.context.get("request")
        url = signed_media_url(obj=item, field="print_file", request=request, download=True)
        return request.build_absolute_uri(url) if request is not None else url


class FulfilmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrintFulfilment
        fields = [
            "status",
            "provider",
            "ship_name",
            "ship_address",
            "ship_phone",
            "carrier",
            "tracking_number",
            "tracking_url",
            "files_ready_at",
            "placed_at",
            "in_production_at",
            "shipped_at",
            "delivered_at",
            "cancelled_at",
        ]
        read_only_fields = fields


class FulfilmentInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s for s in PrintFulfilment.Status.choices if s[0] != PrintFulfilment.Status.PLACED],
        help_text="The next step: in_production, shipped (with tracking_number), delivered, or cancelled.",
    )
    carrier = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    tracking_number = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    tracking_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PrintProductSerializer(serializers.ModelSerializer):
    """The one declaration of a print product's input and output (the API; the prices page posts the same
    fields to billing.prints)."""

    class Meta:
        model = PrintProduct
        fields = ["id", "name", "kind", "finish", "width_mm", "height_mm", "crop_ratio", "min_dpi", "price"]
        fields = [*fields, "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"price": {"coerce_to_string": True}}


class OrderSerializer(serializers.ModelSerializer):
    # null once the client was erased (the order stays, anonymised, as a financial record)
    gallery_title = serializers.CharField(source="gallery.title", read_only=True, allow_null=True)
    client = serializers.IntegerField(source="gallery.client_id", read_only=True, allow_null=True)
    client_name = serializers.CharField(source="gallery.client.name", read_only=True, allow_null=True)
    portrait_count = serializers.IntegerField(read_only=True)
    fulfilment_status = serializers.CharField(
        source="fulfilment.status", read_only=True, allow_null=True, default=None, help_text="Prints only."
    )
    coupon_code = serializers.CharField(source="coupon.code", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "fulfilment_status",
            "gallery",
            "gallery_title",
            "client",
            "client_name",
            "currency",
            "amount",
            "application_fee",
            "subtotal",
            "discount",
            "coupon",
            "coupon_code",
            "shipping_amount",
            "portrait_count",
            "email",
            "created_at",
            "paid_at",
            "refunded_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    items = OrderItemSerializer(many=True, read_only=True)
    fulfilment = FulfilmentSerializer(read_only=True, allow_null=True, default=None)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "items", "fulfilment"]
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

    @extend_schema(
        summary="Move a print order on",
        description="The order's next step: `in_production`, `shipped` (`tracking_number` required; `carrier` and "
        "`tracking_url` optional), `delivered`, or `cancelled` (before shipping). The client gets an email at each "
        "step; `order.shipped` goes to the studio's webhooks. 409 for a step the order can't take (back, twice, "
        "or an order without prints); 400 for a missing tracking number or a bad link.",
        request=FulfilmentInputSerializer,
        responses={200: OrderDetailSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["billing"],
    )
    @action(detail=True, methods=["post"])
    def fulfilment(self, request: Request, order_id: str | None = None) -> Response:
        order: Order = self.get_object()
        data = FulfilmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = PrintFulfilment.objects.filter(order=order).first()
        if record is None:
            raise fulfilment_service.FulfilmentRefused("This order has no print to send.", 409)
        fulfilment_service.advance(fulfilment=record, **data.validated_data)
        fresh = self.get_queryset().prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
        return Response(OrderDetailSerializer(fresh.get(pk=order.pk), context={"request": request}).data)


@extend_schema_view(
    list=extend_schema(summary="The studio's print products", tags=["billing"]),
    retrieve=extend_schema(summary="A print product", tags=["billing"]),
    create=extend_schema(summary="Add a print product", tags=["billing"], responses={201: PrintProductSerializer}),
    partial_update=extend_schema(summary="Change a print product (is_active=false turns it off)", tags=["billing"]),
)
class PrintProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The prints on the studio's price sheet (billing.prints checks every value; refusals are 400 with a
    message). Orders keep what they were sold, so a product is turned off rather than deleted."""

    serializer_class = PrintProductSerializer
    permission_classes = [BillingPermission]
    lookup_url_kwarg = "printproduct_id"
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "patch", "head", "options"]
    write_forbidden = "Only the studio's owners and managers can change its print products."

    def get_queryset(self) -> QuerySet[PrintProduct]:
        return PrintProduct.objects.order_by("-is_active", "price", "id")

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        data.pop("is_active", None)
        serializer.instance = print_service.add_product(**data)  # a PrintRefused is the API's 400 with its message

    def perform_update(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        product = serializer.instance
        if "is_active" in data:
            print_service.set_product_active(product=product, active=data.pop("is_active"))
        if data:
            print_service.update_product(product=product, **data)
