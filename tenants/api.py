"""The studio API: profile, members, invitations, API keys (under /api/ inside a studio).

Views are thin: they check permissions (tenants/permissions.py), validate with serializers and call services
(tenants/services.py, tenants/api_keys.py); a refused action (services.ActionRefused) becomes a JSON error with
the service's status and message (studio_saas/api.py).
Every queryset comes from a tenant-owned model's default manager, so it only ever holds the request's studio's
rows; object ids in URLs are `<model>_id` and another studio's id is a 404 like any missing one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import api_keys, branding, services
from tenants.models import ApiKey, Invitation, Membership, Role, Studio, client_language_choices
from tenants.permissions import IsStudioManager, IsStudioManagerOrReadOnly, IsStudioMember

# --- Serializers ----------------------------------------------------------------------------------------------


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class StudioSerializer(serializers.ModelSerializer):
    has_logo = serializers.SerializerMethodField()
    has_gallery_cover = serializers.SerializerMethodField()

    class Meta:
        model = Studio
        fields = [
            "name",
            "slug",
            "primary_color",
            "contact_email",
            "custom_domain",
            "has_logo",
            "has_gallery_cover",
            "watermark_text",
            "client_language",
        ]
        read_only_fields = [
            "slug",
            "custom_domain",
            "has_logo",
            "has_gallery_cover",
            "watermark_text",
            "client_language",
        ]
        extra_kwargs = {"name": {"allow_blank": False}}

    def get_has_logo(self, studio: Studio) -> bool:
        return bool(studio.logo)

    def get_has_gallery_cover(self, studio: Studio) -> bool:
        return bool(studio.gallery_cover)


class BrandingSerializer(serializers.Serializer):
    """The owner's branding page, by API (multipart for the images; every field optional: left out, unchanged)."""

    primary_color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False, help_text="Like #1f2937.")
    watermark_text = serializers.CharField(max_length=60, required=False, allow_blank=True)
    client_language = serializers.ChoiceField(choices=client_language_choices(), required=False)
    logo = serializers.FileField(required=False, help_text="JPEG, PNG or WebP, up to 2 MB (stored as a clean PNG).")
    remove_logo = serializers.BooleanField(required=False, default=False)
    gallery_cover = serializers.FileField(
        required=False, help_text="JPEG, PNG or WebP, at least 600 px, up to 15 MB (stored as a clean JPEG)."
    )
    remove_gallery_cover = serializers.BooleanField(required=False, default=False)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("The studio needs a name.")
        return value


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)
    status = serializers.ChoiceField(
        choices=["pending", "accepted", "revoked", "expired"], read_only=True, help_text="Where the invitation stands."
    )

    class Meta:
        model = Invitation
        # The token is never shown: it is the secret part of the emailed link.
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "status", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.STAFF)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "is_active", "created_by", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=api_keys.NAME_MAX_LENGTH)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The API key itself. Shown once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


def _as_api_error(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(serializers.as_serializer_error(exc))


# --- Studio ---------------------------------------------------------------------------------------------------


class StudioProfileView(generics.RetrieveUpdateAPIView):
    """The studio's profile and branding. Members and API keys read it; owners and managers change it."""

    serializer_class = StudioSerializer
    permission_classes = [IsStudioManagerOrReadOnly]
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> Studio:
        return self.request.studio

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        studio = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(studio, field, value)
        try:
            studio.full_clean(validate_unique=False)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        studio.save(update_fields=list(serializer.validated_data))


class StudioBrandingView(generics.GenericAPIView):
    """The branding page's form by API: the studio's owner only (as on the page; API keys and other roles get
    403), images treated as untrusted uploads the same way (tenants/branding.py)."""

    serializer_class = BrandingSerializer
    permission_classes = [IsStudioMember]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        summary="Change the studio's branding (owners)",
        description="Accent colour, watermark text, the clients' language, the logo and the gallery cover, as on "
        "the branding page. multipart/form-data for the images. 400 with the reason for an image that can't be "
        "used (nothing is changed then); 403 for anyone but an owner.",
        request={"multipart/form-data": BrandingSerializer, "application/json": BrandingSerializer},
        responses={200: StudioSerializer},
        tags=["studio"],
    )
    def post(self, request: Request) -> Response:
        studio = request.studio  # type: ignore[attr-defined]
        body = BrandingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        logo = data.get("logo")
        cover = data.get("gallery_cover")
        updated = branding.update_branding(
            studio=studio,
            user=request.user if request.user.is_authenticated else None,
            primary_color=data.get("primary_color", studio.primary_color),
            watermark_text=data.get("watermark_text", studio.watermark_text),
            client_language=data.get("client_language"),
            logo_png=branding.clean_logo(logo) if logo else None,
            remove_logo=data["remove_logo"],
            cover_jpeg=branding.clean_cover(cover) if cover else None,
            remove_cover=data["remove_gallery_cover"],
        )
        return Response(StudioSerializer(updated).data)


# --- Members --------------------------------------------------------------------------------------------------


class MemberListView(generics.ListAPIView):
    """The studio's members and their roles."""

    serializer_class = MembershipSerializer
    permission_classes = [IsStudioMember]

    def get_queryset(self) -> QuerySet[Membership]:
        return Membership.objects.select_related("user").order_by("user__email")


class MemberDetailView(generics.RetrieveUpdateDestroyAPIView):
    """One member. Owners and managers change the role (PATCH {"role": ...}) or remove the member (DELETE)."""

    serializer_class = MembershipSerializer
    permission_classes = [IsStudioManagerOrReadOnly]
    lookup_url_kwarg = "membership_id"
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Membership]:
        return Membership.objects.select_related("user")

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = services.change_member_role(
            membership=serializer.instance,
            role=serializer.validated_data.get("role", serializer.instance.role),
            changed_by=self.request.user,
        )

    def perform_destroy(self, instance: Membership) -> None:
        services.remove_member(membership=instance, removed_by=self.request.user)


# --- Invitations ----------------------------------------------------------------------------------------------


@extend_schema_view(post=extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer}))
class InvitationListCreateView(generics.ListCreateAPIView):
    """Invitations to join the studio (owners and managers). POST {"email", "role"} sends one."""

    serializer_class = InvitationSerializer
    permission_classes = [IsStudioManager]

    def get_queryset(self) -> QuerySet[Invitation]:
        return Invitation.objects.select_related("invited_by").order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invite_member(
            studio=request.studio,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            invited_by=request.user,
            base_url=request.build_absolute_uri(reverse("dashboard")),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(generics.RetrieveDestroyAPIView):
    """One invitation; DELETE revokes it (its link stops working)."""

    serializer_class = InvitationSerializer
    permission_classes = [IsStudioManager]
    lookup_url_kwarg = "invitation_id"

    def get_queryset(self) -> QuerySet[Invitation]:
        return Invitation.objects.select_related("invited_by")

    def perform_destroy(self, instance: Invitation) -> None:
        services.revoke_invitation(invitation=instance, revoked_by=self.request.user)


# --- API keys -------------------------------------------------------------------------------------------------


@extend_schema_view(post=extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer}))
class ApiKeyListCreateView(generics.ListCreateAPIView):
    """The studio's API keys (owners and managers, signed in: a key cannot create keys).
    POST {"name"} creates one; the response holds the key itself, shown this once."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsStudioManager]

    def get_queryset(self) -> QuerySet[ApiKey]:
        return ApiKey.objects.select_related("created_by").order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            api_key, raw_key = api_keys.create_api_key(name=data.validated_data["name"], created_by=request.user)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        api_key.key = raw_key
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)


@extend_schema_view(delete=extend_schema(responses={204: None}))
class ApiKeyDetailView(generics.RetrieveDestroyAPIView):
    """One API key; DELETE revokes it (it stays listed, revoked, for the record)."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsStudioManager]
    lookup_url_kwarg = "apikey_id"

    def get_queryset(self) -> QuerySet[ApiKey]:
        return ApiKey.objects.select_related("created_by")

    def perform_destroy(self, instance: ApiKey) -> None:
        api_keys.revoke_api_key(api_key=instance)
