"""The price sheet by API, as on the prices page (routes in billing/api_urls.py; docs/billing-orders.md):

    price-sheet/                    GET the currency, the price per portrait, the print shipping and countries, the
                                    platform's fee and whether clients can pay now; PATCH any of the first four
    packages/                       GET list, POST create ("5 portraits for 39.00"; count 0: all of the gallery)
    packages/{package_id}/          GET, PATCH is_active (a package is turned off, never deleted: orders name it)

Who may: reads, owners and managers (signed in) and the studio's API keys; writes, owners and managers signed in
(API keys get 403), like the page. Refusals are 400 with the page's message; another studio's package is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import connect, prices
from billing import prints as print_service
from billing.api import _ERROR, ID_REGEX, BillingPermission
from billing.models import Package

WRITE_FORBIDDEN = "Only the studio's owners and managers can change its prices."


class PriceSheetSerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=prices.CURRENCIES, help_text="ISO 4217, lower case.")
    price_per_portrait = serializers.DecimalField(max_digits=10, decimal_places=2)
    print_shipping = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="Shipping of a print order (0: free)."
    )
    ship_to_countries = serializers.ListField(
        child=serializers.CharField(max_length=2, min_length=2),
        max_length=250,
        help_text="Two-letter country codes prints ship to; empty: the default list (docs/prints.md).",
    )
    application_fee_percent = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)
    can_take_payments = serializers.BooleanField(read_only=True, help_text="Whether clients can pay online now.")


class PackageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Package
        fields = ["id", "name", "count", "price", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"count": {"help_text": "Portraits included; 0: all of the gallery."}}


def _sheet_data() -> dict[str, Any]:
    sheet = prices.price_sheet()
    return {
        "currency": sheet.currency,
        "price_per_portrait": sheet.price_per_portrait,
        "print_shipping": sheet.print_shipping,
        "ship_to_countries": list(sheet.ship_to_countries or []),
        "application_fee_percent": prices.application_fee_percent(),
        "can_take_payments": connect.can_take_payments(),
    }


class PriceSheetView(APIView):
    permission_classes = [BillingPermission]
    write_forbidden = WRITE_FORBIDDEN

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # BillingPermission reads the view's action (a ViewSet's name for it): GET reads, PATCH writes.
        self.action = "retrieve" if request.method in ("GET", "HEAD", "OPTIONS") else "partial_update"
        super().initial(request, *args, **kwargs)

    @extend_schema(summary="The studio's price sheet", responses={200: PriceSheetSerializer}, tags=["billing"])
    def get(self, request: Request) -> Response:
        return Response(PriceSheetSerializer(_sheet_data()).data)

    @extend_schema(
        summary="Change the price sheet",
        description="Any of currency, price_per_portrait (0.50 to 10000), print_shipping (0 to 10000) and "
        "ship_to_countries; the others stay. 400 with the prices page's message for a value it refuses.",
        request=PriceSheetSerializer(partial=True),
        responses={200: PriceSheetSerializer, 400: _ERROR, 403: _ERROR},
        tags=["billing"],
    )
    def patch(self, request: Request) -> Response:
        data = PriceSheetSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        given, sheet = data.validated_data, prices.price_sheet()
        if "currency" in given or "price_per_portrait" in given:
            prices.update_price_sheet(
                currency=given.get("currency", sheet.currency),
                price_per_portrait=given.get("price_per_portrait", sheet.price_per_portrait),
            )
        if "print_shipping" in given or "ship_to_countries" in given:
            print_service.update_shipping(
                print_shipping=given.get("print_shipping", sheet.print_shipping),
                ship_to_countries=given.get("ship_to_countries", sheet.ship_to_countries or []),
            )
        return Response(PriceSheetSerializer(_sheet_data()).data)


@extend_schema_view(
    list=extend_schema(summary="The studio's packages", tags=["billing"]),
    retrieve=extend_schema(summary="A package", tags=["billing"]),
    create=extend_schema(summary="Add a package", tags=["billing"], responses={201: PackageSerializer, 400: _ERROR}),
    partial_update=extend_schema(summary="Turn a package on or off (is_active)", tags=["billing"]),
)
class PackageViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = PackageSerializer
    permission_classes = [BillingPermission]
    lookup_url_kwarg = "package_id"
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "patch", "head", "options"]
    write_forbidden = WRITE_FORBIDDEN

    def get_queryset(self) -> QuerySet[Package]:
        return Package.objects.order_by("-is_active", "price", "id")

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        count = data.get("count", Package._meta.get_field("count").default)  # the model's default, as documented
        serializer.instance = prices.add_package(name=data["name"], count=count, price=data["price"])

    def perform_update(self, serializer: Any) -> None:
        data = serializer.validated_data
        if set(data) - {"is_active"}:
            raise prices.PriceError("Only is_active can change: a package's name, count and price are what was sold.")
        if "is_active" in data:
            prices.set_package_active(package=serializer.instance, active=data["is_active"])
