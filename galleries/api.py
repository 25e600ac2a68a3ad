"""The galleries API (the studio's side), under /api/ inside a studio (routes in galleries/api_urls.py):

    galleries/                                            GET list, POST create (portraits, or a run's picks)
    galleries/{gallery_id}/                               GET (with its portraits), PUT/PATCH (title, message,
                                                          expires_at, allow_more_like_me, download_limit)
    galleries/{gallery_id}/portraits/                     GET ?page=N: the portraits, 100 a page (count, next,
                                                          previous, results); POST {portraits: [ids]}: add
                                                          portraits of the client (the detail carries the first
                                                          100 and `portraits_next`)
    galleries/{gallery_id}/portraits/{portrait_id}/       DELETE: take a portrait out
    galleries/{gallery_id}/order/                         PUT {portraits: [ids]}: the order of every portrait
    galleries/{gallery_id}/password/ | pin/               POST {password} / {pin}: set; DELETE: remove
    galleries/{gallery_id}/extend/                        POST {days}
    galleries/{gallery_id}/share/                         POST: email the client the link (409 without email)
    galleries/{gallery_id}/revoke/ | restore/             POST: the link stops / starts working
    galleries/{gallery_id}/unlock/                        POST: unlock a gallery locked after too many wrong
                                                          passwords or PINs (owners, signed in)
    galleries/{gallery_id}/stats/                         GET: views, favorites, downloads per day and totals
    galleries/{gallery_id}/entitlements/                  GET list, POST {portraits, size}: grant downloads
    galleries/{gallery_id}/entitlements/{entitlement_id}/ GET, DELETE revokes
    gallery-settings/                                     GET, PUT/PATCH (owners and managers, signed in)

Who may do what (tenants/permissions.py decides who is a member; 401 anonymous, 404 non-members):
- read: every member and the studio's API keys;
- write: owners, managers and staff (as on the pages), and API keys (integrations: a shop creates galleries,
  grants what was paid for); photographers only read (403 with a message);
- the studio's gallery settings: owners and managers, signed in;
- unlocking a gallery locked after too many wrong passwords or PINs: owners, signed in (not API keys).
Another studio's gallery or entitlement (in the URL) is a 404 whatever the method and the role; another studio's
client, run or portrait named in a body is a 400 ("no such ... in this studio"), like a missing one.
Refusals of galleries.services (GalleryError) keep their status and message.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.models import Client, ClientGroup
from galleries import selectors, services
from galleries.models import Entitlement, Gallery
from galleries.serializers import (
    API_PORTRAITS_PAGE_SIZE,
    EntitlementSerializer,
    ExtendSerializer,
    GalleryCreateSerializer,
    GalleryDetailSerializer,
    GalleryEntrySerializer,
    GalleryPortraitsPageSerializer,
    GallerySerializer,
    GallerySettingsSerializer,
    GalleryUpdateSerializer,
    GrantSerializer,
    PasswordSerializer,
    PinSerializer,
    PortraitIdsSerializer,
    StatsSerializer,
    portraits_page_url,
)
from galleries.views import (
    ACT_FORBIDDEN,
    GALLERY_ROLES,
    SETTINGS_FORBIDDEN,
    SETTINGS_ROLES,
    UNLOCK_FORBIDDEN,
    UNLOCK_ROLES,
)
from generation.models import RenderRun
from tenants.access import acting_user
from tenants.permissions import Rule, RulePermission

ID_REGEX = r"[0-9]+"
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


WRITE_RULE: Rule = (GALLERY_ROLES, True, ACT_FORBIDDEN)
SETTINGS_RULE: Rule = (SETTINGS_ROLES, False, SETTINGS_FORBIDDEN)
UNLOCK_RULE: Rule = (UNLOCK_ROLES, False, UNLOCK_FORBIDDEN)


class GalleryPermission(RulePermission):
    """The rule-based permission of tenants.permissions, with this API's default message."""

    message = ACT_FORBIDDEN


class _RuledMixin:
    action_rules: dict[str, Rule] = {}

    def rule_for(self, request: Request) -> Rule | None:
        name = getattr(self, "action", None)
        if name in self.action_rules:
            return self.action_rules[name]
        if request.method in SAFE_METHODS:
            return None
        return WRITE_RULE


def _studio_root(request: Request) -> str:
    from django.urls import reverse

    return request.build_absolute_uri(reverse("dashboard"))


# --- Galleries ------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The studio's galleries, newest first", tags=["galleries"]),
    retrieve=extend_schema(
        summary="A gallery with its portraits",
        description="`portraits`: in order, each with the client's favorite and signed, expiring links to its "
        "thumbnail and watermarked preview.",
        tags=["galleries"],
        responses={200: GalleryDetailSerializer},
    ),
    create=extend_schema(
        summary="Make a gallery for a client",
        description="`portraits`: ids of the client's shown portraits; left out with `run`: that run's picks. "
        "`expires_at` left out: the studio's default (gallery settings); null: never. A draft until shared. 400 "
        "names the portrait that can't go in (another client's, hidden, unknown); 409 for a run without picks.",
        tags=["galleries"],
        request=GalleryCreateSerializer,
        responses={201: GalleryDetailSerializer, 400: _ERROR, 409: _ERROR},
    ),
    update=extend_schema(
        summary="Change a gallery", tags=["galleries"], request=GalleryUpdateSerializer, responses=GallerySerializer
    ),
    partial_update=extend_schema(
        summary="Change some of a gallery's details",
        tags=["galleries"],
        request=GalleryUpdateSerializer,
        responses=GallerySerializer,
    ),
)
class GalleryViewSet(
    _RuledMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = GallerySerializer
    permission_classes = [GalleryPermission]
    action_rules = {"unlock": UNLOCK_RULE}
    lookup_url_kwarg = "gallery_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Gallery]:
        return selectors.gallery_list()

    def get_serializer_class(self) -> type:
        return GalleryDetailSerializer if self.action in ("retrieve", "create") else GallerySerializer

    def _answer(self, gallery: Gallery, status_code: int = 200, detail: bool = False) -> Response:
        fresh = self.get_queryset().get(pk=gallery.pk)
        serializer = GalleryDetailSerializer if detail else GallerySerializer
        return Response(serializer(fresh, context=self.get_serializer_context()).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = GalleryCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        client = Client.objects.filter(pk=values.pop("client")).first()
        if client is None:
            raise exceptions.ValidationError({"client": ["No such client in this studio."]})
        group = None
        if "group" in values:
            group = ClientGroup.objects.filter(pk=values.pop("group")).first()
            if group is None:
                raise exceptions.ValidationError({"group": ["No such group in this studio."]})
        run = None
        if "run" in values:
            run = RenderRun.objects.filter(pk=values.pop("run")).first()
            if run is None:
                raise exceptions.ValidationError({"run": ["No such render run in this studio."]})
        never = "expires_at" in values and values["expires_at"] is None
        gallery = services.create_gallery(
            client=client,
            run=run,
            portraits=values.get("portraits"),
            title=values["title"],
            message=values["message"],
            password=values["password"],
            pin=values["pin"],
            expires_at=values.get("expires_at"),
            never_expires=never,
            allow_more_like_me=values["allow_more_like_me"],
            download_limit=values["download_limit"],
            user=acting_user(request),
            group=group,
        )
        return self._answer(gallery, status.HTTP_201_CREATED, detail=True)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        gallery: Gallery = self.get_object()
        data = GalleryUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "cover_portrait" in changes:
            services.set_cover(gallery=gallery, portrait=changes.pop("cover_portrait"))
        services.update_gallery(gallery=gallery, **changes)
        return self._answer(gallery)

    @extend_schema(
        summary="Add portraits of the gallery's client",
        description="At the end, in the order given; those already in the gallery stay where they are.",
        request=PortraitIdsSerializer,
        responses={200: GalleryDetailSerializer, 400: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post"], url_path="portraits")
    def add_portraits(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        data = PortraitIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.add_portraits(gallery=gallery, portraits=data.validated_data["portraits"])
        return self._answer(gallery, detail=True)

    @extend_schema(
        summary="The gallery's portraits, a page at a time",
        description=f"{API_PORTRAITS_PAGE_SIZE} a page, in the gallery's order; `?page=N` (1 by default; past the "
        "last page: the last page). `next` and `previous` are the links to the neighbouring pages, or null.",
        parameters=[OpenApiParameter("page", int, description="The page, from 1.")],
        responses=GalleryPortraitsPageSerializer,
        tags=["galleries"],
    )
    @add_portraits.mapping.get
    def list_portraits(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        page = selectors.gallery_entries_page(
            gallery=gallery,
            number=selectors.parse_page(request.query_params.get("page")),
            size=API_PORTRAITS_PAGE_SIZE,
        )
        context = self.get_serializer_context()
        body = {
            "count": page.total,
            "next": portraits_page_url(request, gallery, page.number + 1) if page.has_next else None,
            "previous": portraits_page_url(request, gallery, page.number - 1) if page.has_previous else None,
            "results": GalleryEntrySerializer(page.entries, many=True, context=context).data,
        }
        return Response(body)

    @extend_schema(
        summary="Take a portrait out of the gallery",
        request=None,
        responses={204: None, 404: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["delete"], url_path=rf"portraits/(?P<portrait_id>{ID_REGEX})", url_name="portrait")
    def remove_portrait(
        self, request: Request, gallery_id: str | None = None, portrait_id: str | None = None
    ) -> Response:
        gallery: Gallery = self.get_object()
        services.remove_portrait(gallery=gallery, portrait=int(portrait_id or 0))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Put the gallery's portraits in this order",
        request=PortraitIdsSerializer,
        responses={200: GalleryDetailSerializer, 400: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["put"], url_path="order")
    def order(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        data = PortraitIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.reorder(gallery=gallery, portrait_ids=data.validated_data["portraits"])
        return self._answer(gallery, detail=True)

    @extend_schema(
        summary="Set (POST) or remove (DELETE) the gallery's password",
        description="Stored hashed; never returned, never emailed.",
        request=PasswordSerializer,
        responses={200: GallerySerializer, 400: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post", "delete"])
    def password(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        if request.method == "DELETE":
            services.clear_password(gallery=gallery)
            return self._answer(gallery)
        data = PasswordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.set_password(gallery=gallery, password=data.validated_data["password"])
        return self._answer(gallery)

    @extend_schema(
        summary="Set (POST) or remove (DELETE) the gallery's download PIN",
        description="4 to 8 digits, stored hashed; never returned, never emailed.",
        request=PinSerializer,
        responses={200: GallerySerializer, 400: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post", "delete"])
    def pin(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        if request.method == "DELETE":
            services.clear_pin(gallery=gallery)
            return self._answer(gallery)
        data = PinSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.set_pin(gallery=gallery, pin=data.validated_data["pin"])
        return self._answer(gallery)

    @extend_schema(
        summary="Keep the gallery open more days",
        description="Counted from its expiry, or from now when it has passed. A new date means a new reminder.",
        request=ExtendSerializer,
        responses={200: GallerySerializer, 400: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        data = ExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.extend(gallery=gallery, days=data.validated_data["days"])
        return self._answer(gallery)

    @extend_schema(
        summary="Email the client that their gallery is ready",
        description="With the link (never the password or PIN). 409 when the client has no email address, or the "
        "gallery is revoked, expired or empty.",
        request=None,
        responses={200: GallerySerializer, 409: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post"])
    def share(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        services.share(gallery=gallery, user=acting_user(request), base_url=_studio_root(request))
        return self._answer(gallery)

    @extend_schema(summary="Revoke the share link", request=None, responses=GallerySerializer, tags=["galleries"])
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        services.revoke(gallery=gallery)
        return self._answer(gallery)

    @extend_schema(summary="Restore the share link", request=None, responses=GallerySerializer, tags=["galleries"])
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        services.restore(gallery=gallery)
        return self._answer(gallery)

    @extend_schema(
        summary="Unlock a gallery locked after too many wrong passwords or PINs",
        description="Owners only, signed in. Clients may type the password and PIN again, and every count of "
        "wrong guesses starts again; who and when are recorded (`secret_unlocked_by`, `secret_unlocked_at`). "
        "409 when the gallery isn't locked.",
        request=None,
        responses={200: GallerySerializer, 403: _ERROR, 409: _ERROR},
        tags=["galleries"],
    )
    @action(detail=True, methods=["post"])
    def unlock(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        services.unlock_secrets(gallery=gallery, user=acting_user(request))
        return self._answer(gallery)

    @extend_schema(
        summary="Views, favorites and downloads per day, and totals",
        responses=StatsSerializer,
        tags=["galleries"],
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, gallery_id: str | None = None) -> Response:
        gallery: Gallery = self.get_object()
        stats = selectors.gallery_stats(gallery=gallery)
        return Response(StatsSerializer({"days": stats.days, "totals": stats.totals}).data)


# --- Entitlements ---------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="What the client may download from the gallery", tags=["galleries"]),
    retrieve=extend_schema(summary="One entitlement", tags=["galleries"]),
    create=extend_schema(
        summary="Let the client download portraits of the gallery",
        description="Granted by staff: one entitlement per portrait at this size, with the gallery's download "
        "limit (else the studio's). A portrait that already has an active one at this size keeps it.",
        request=GrantSerializer,
        responses={201: EntitlementSerializer(many=True), 400: _ERROR},
        tags=["galleries"],
    ),
    destroy=extend_schema(summary="Revoke an entitlement", responses={204: None, 404: _ERROR}, tags=["galleries"]),
)
class EntitlementViewSet(
    _RuledMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = EntitlementSerializer
    permission_classes = [GalleryPermission]
    lookup_url_kwarg = "entitlement_id"
    lookup_value_regex = ID_REGEX

    gallery: Gallery

    def load_parents(self) -> None:
        if getattr(self, "swagger_fake_view", False):
            return
        self.gallery = get_object_or_404(Gallery.objects.all(), pk=self.kwargs["gallery_id"])

    def get_queryset(self) -> QuerySet[Entitlement]:
        if getattr(self, "swagger_fake_view", False):
            return Entitlement.objects.none()
        return (
            Entitlement.objects.filter(gallery=self.gallery).select_related("granted_by").order_by("-granted_at", "-id")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = GrantSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        granted = services.grant_entitlements(
            gallery=self.gallery,
            portraits=data.validated_data["portraits"],
            size=data.validated_data["size"],
            user=acting_user(request),
        )
        return Response(EntitlementSerializer(granted, many=True).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Entitlement) -> None:
        services.revoke_entitlement(entitlement=instance)


# --- The studio's settings ------------------------------------------------------------------------------------


class GallerySettingsView(_RuledMixin, APIView):
    """The studio's gallery defaults: every member and key reads; owners and managers (signed in) change them."""

    permission_classes = [GalleryPermission]

    def rule_for(self, request: Request) -> Rule | None:
        return None if request.method in SAFE_METHODS else SETTINGS_RULE

    @extend_schema(summary="The studio's gallery settings", responses=GallerySettingsSerializer, tags=["galleries"])
    def get(self, request: Request) -> Response:
        return Response(GallerySettingsSerializer(services.gallery_settings()).data)

    @extend_schema(
        summary="Change the studio's gallery settings",
        request=GallerySettingsSerializer,
        responses={200: GallerySettingsSerializer, 400: _ERROR, 403: _ERROR},
        tags=["galleries"],
    )
    def put(self, request: Request) -> Response:
        return self._change(request, partial=False)

    @extend_schema(
        summary="Change some of the studio's gallery settings",
        request=GallerySettingsSerializer,
        responses={200: GallerySettingsSerializer, 400: _ERROR, 403: _ERROR},
        tags=["galleries"],
    )
    def patch(self, request: Request) -> Response:
        return self._change(request, partial=True)

    def _change(self, request: Request, *, partial: bool) -> Response:
        current = services.gallery_settings()
        data = GallerySettingsSerializer(current, data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        updated = services.update_settings(**data.validated_data, user=acting_user(request))
        return Response(GallerySettingsSerializer(updated).data)
