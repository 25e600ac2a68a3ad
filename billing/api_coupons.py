"""The coupons and gallery sales API, under /api/ inside a studio (routes in billing/api_urls.py; docs/coupons.md):

    coupons/                                  GET list (each with its report), POST create (made at Stripe too)
    coupons/{coupon_id}/                      GET one, with its report
    coupons/{coupon_id}/deactivate/           POST: the code stops working (its report stays)
    gallery-sales/                            GET list, POST create
    gallery-sales/{gallerysale_id}/           GET one, DELETE (the sale ends)

Who may, as for the webhooks API: reads, owners and managers (signed in) and the studio's API keys; writes, owners
and managers signed in (API keys get 403). Another studio's coupon or sale is a 404. The input serializers are the
one declaration of a coupon's and a sale's input: the studio page (billing/views_coupons.py) uses them too.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing import coupons
from billing.api_webhooks import ManagersWritePermission
from billing.models import Coupon, GallerySale
from galleries.models import Gallery

ID_REGEX = r"[0-9]+"
READ_FORBIDDEN = "Only the studio's owners and managers (or its API keys) can see its coupons and sales."
WRITE_FORBIDDEN = "Only the studio's owners and managers can change its coupons and sales."
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class CouponPermission(ManagersWritePermission):
    """The webhooks API's rule (billing.api_webhooks), with this API's messages."""

    read_forbidden = READ_FORBIDDEN
    write_forbidden = WRITE_FORBIDDEN


# --- Input (the API and the studio page) ------------------------------------------------------------------------


class CouponInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=30, help_text="3 to 30 letters, digits or dashes (stored upper case).")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    percent_off = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, default=None, help_text="1 to 100."
    )
    amount_off = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        required=False,
        allow_null=True,
        default=None,
        help_text="In the price sheet's currency. Exactly one of percent_off and amount_off.",
    )
    applies_to = serializers.ChoiceField(choices=Coupon.AppliesTo.choices, default=Coupon.AppliesTo.ALL)
    product_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=200,
        help_text="The print products, when applies_to is `products`.",
    )
    min_order = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True, default=None)
    max_uses = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    max_uses_per_client = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    ends_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class SaleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    percent_off = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="1 to 99.")
    gallery = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="Empty: every gallery of the studio."
    )
    applies_to = serializers.ChoiceField(choices=GallerySale.AppliesTo.choices, default=GallerySale.AppliesTo.ALL)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


def create_coupon_from(data: dict[str, Any]) -> Coupon:
    """`coupons.create_coupon` with a CouponInputSerializer's validated data."""
    return coupons.create_coupon(
        code=data["code"],
        description=data.get("description", ""),
        percent_off=data.get("percent_off"),
        amount_off=data.get("amount_off"),
        applies_to=data.get("applies_to", Coupon.AppliesTo.ALL),
        product_ids=data.get("product_ids") or [],
        min_order=data.get("min_order"),
        max_uses=data.get("max_uses"),
        max_uses_per_client=data.get("max_uses_per_client"),
        starts_at=data.get("starts_at"),
        ends_at=data.get("ends_at"),
    )


def create_sale_from(data: dict[str, Any]) -> GallerySale:
    """`coupons.create_sale` with a SaleInputSerializer's validated data (the gallery: the studio's own)."""
    gallery = None
    if data.get("gallery"):
        gallery = Gallery.objects.filter(pk=data["gallery"]).first()
        if gallery is None:
            message = _("This gallery doesn't exist.")
            refused = coupons.CouponRefused(message, 400)
            refused.fields = {"gallery": [message]}
            raise refused
    return coupons.create_sale(
        name=data["name"],
        percent_off=data["percent_off"],
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        gallery=gallery,
        applies_to=data.get("applies_to", GallerySale.AppliesTo.ALL),
    )


# --- Output ---------------------------------------------------------------------------------------------------


class ReportSerializer(serializers.Serializer):
    orders = serializers.IntegerField(help_text="Paid orders with the code (refunded ones included).")
    revenue = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="The amounts they paid.")
    discount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="The discount given on them.")
    refunds = serializers.IntegerField(help_text="Of them, refunded.")
    refunded = serializers.DecimalField(max_digits=12, decimal_places=2)


class CouponSerializer(serializers.ModelSerializer):
    product_ids = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()

    class Meta:
        model = Coupon
        fields = [
            "id",
            "code",
            "description",
            "percent_off",
            "amount_off",
            "currency",
            "applies_to",
            "product_ids",
            "min_order",
            "max_uses",
            "max_uses_per_client",
            "starts_at",
            "ends_at",
            "is_active",
            "stripe_coupon_id",
            "stripe_promotion_code_id",
            "created_at",
            "report",
        ]
        read_only_fields = fields

    def get_product_ids(self, obj: Coupon) -> list[int]:
        return sorted(p.pk for p in obj.products.all())

    @extend_schema_field(ReportSerializer)
    def get_report(self, obj: Coupon) -> dict[str, Any]:
        found = (self.context.get("reports") or {}).get(obj.pk) or coupons.report(coupon=obj)
        return ReportSerializer(found).data


class SaleSerializer(serializers.ModelSerializer):
    class Meta:
        model = GallerySale
        fields = ["id", "name", "gallery", "percent_off", "applies_to", "starts_at", "ends_at", "created_at"]
        read_only_fields = fields


# --- Views ----------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The studio's coupon codes, each with what it brought in", tags=["coupons"]),
    retrieve=extend_schema(summary="A coupon code with its report", tags=["coupons"]),
    create=extend_schema(
        summary="Create a coupon code",
        description="Made at Stripe too (a Coupon and a Promotion Code on the platform account). 400 for bad "
        "input, 409 when the code is already active, 502/503 when Stripe fails or isn't configured (nothing is "
        "stored then).",
        request=CouponInputSerializer,
        responses={201: CouponSerializer, 400: _ERROR, 403: _ERROR, 409: _ERROR, 502: _ERROR, 503: _ERROR},
        tags=["coupons"],
    ),
)
class CouponViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = CouponSerializer
    permission_classes = [CouponPermission]
    lookup_url_kwarg = "coupon_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Coupon]:
        return Coupon.objects.prefetch_related("products").order_by("-created_at", "-id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if getattr(self, "action", None) == "list":
            context["reports"] = {r.coupon.pk: r for r in coupons.reports()}
        return context

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CouponInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = create_coupon_from(data.validated_data)
        return Response(CouponSerializer(coupon).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Deactivate a coupon code",
        description="The code stops working at once (its Stripe promotion code is turned off too); its report stays.",
        request=None,
        responses={200: CouponSerializer, 403: _ERROR, 404: _ERROR},
        tags=["coupons"],
    )
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, coupon_id: str | None = None) -> Response:
        coupon = coupons.deactivate_coupon(coupon=self.get_object())
        return Response(CouponSerializer(coupon).data)


@extend_schema_view(
    list=extend_schema(summary="The studio's gallery sales", tags=["coupons"]),
    retrieve=extend_schema(summary="A gallery sale", tags=["coupons"]),
    create=extend_schema(
        summary="Create a gallery sale",
        description="A percentage off the unit prices of one gallery (or of every gallery: no `gallery`) between "
        "two dates. 400 for bad input.",
        request=SaleInputSerializer,
        responses={201: SaleSerializer, 400: _ERROR, 403: _ERROR},
        tags=["coupons"],
    ),
    destroy=extend_schema(summary="End a gallery sale (delete it)", tags=["coupons"]),
)
class SaleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SaleSerializer
    permission_classes = [CouponPermission]
    lookup_url_kwarg = "gallerysale_id"
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[GallerySale]:
        return GallerySale.objects.order_by("-ends_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = SaleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sale = create_sale_from(data.validated_data)
        return Response(SaleSerializer(sale).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: GallerySale) -> None:
        coupons.delete_sale(sale=instance)
