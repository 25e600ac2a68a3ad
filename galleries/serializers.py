"""Serializers of the galleries API (galleries/api.py). Output shapes and input checks only: the writes happen in
galleries.services. Passwords and PINs are write-only (only `has_password` / `has_pin` come back); portraits
are reached through signed, expiring media links (tenants/media.py), never storage paths."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from galleries import selectors, services
from galleries.models import Entitlement, Gallery, GalleryPortrait, GallerySettings
from tenants.api_fields import IdField
from tenants.media import signed_media_url


def _absolute(request: Any, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class GallerySerializer(serializers.ModelSerializer):
    client_name = serializers.CharField(source="client.name", read_only=True)
    status = serializers.SerializerMethodField(help_text="draft, shared, expired or revoked")
    url = serializers.SerializerMethodField(help_text="The share link to send to the client (it is the credential).")
    has_password = serializers.BooleanField(read_only=True)
    has_pin = serializers.BooleanField(read_only=True)
    pin_may_be_short = serializers.SerializerMethodField(
        help_text="The PIN is shorter than the digits now required, or was set before its length was recorded: "
        "still accepted, but set a new one."
    )
    secret_locked_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Locked after too many wrong passwords or PINs (null: not locked): nobody new gets in until an "
        "owner unlocks it (POST unlock/).",
    )
    secret_unlocked_by = serializers.EmailField(
        source="secret_unlocked_by.email", read_only=True, default=None, help_text="Who last unlocked it."
    )
    portrait_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    favorite_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Gallery
        fields = [
            "id",
            "client_id",
            "client_name",
            "title",
            "message",
            "status",
            "url",
            "has_password",
            "has_pin",
            "pin_may_be_short",
            "secret_locked_at",
            "secret_unlocked_at",
            "secret_unlocked_by",
            "expires_at",
            "shared_at",
            "reminder_sent_at",
            "revoked_at",
            "allow_more_like_me",
            "download_limit",
            "run_id",
            "group_id",
            "cover_portrait_id",
            "portrait_count",
            "favorite_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_pin_may_be_short(self, gallery: Gallery) -> bool:
        return services.pin_may_be_short(gallery)

    def get_status(self, gallery: Gallery) -> str:
        return selectors.gallery_status(gallery)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, gallery: Gallery) -> str | None:
        from django.urls import NoReverseMatch, reverse

        try:
            path = reverse(services.PUBLIC_URL_NAME, kwargs={"gallery_token": gallery.token})
        except NoReverseMatch:
            return None
        return _absolute(self.context.get("request"), path)


class GalleryEntrySerializer(serializers.ModelSerializer):
    thumbnail = serializers.SerializerMethodField(help_text="A signed, expiring link to the thumbnail.")
    preview = serializers.SerializerMethodField(help_text="A signed, expiring link to the watermarked preview.")

    class Meta:
        model = GalleryPortrait
        fields = ["portrait_id", "position", "is_favorite", "favorited_at", "added_at", "thumbnail", "preview"]
        read_only_fields = fields

    def _link(self, entry: GalleryPortrait, field: str) -> str | None:
        portrait = entry.portrait
        if not getattr(portrait, field):
            return None
        request = self.context.get("request")
        return _absolute(request, signed_media_url(obj=portrait, field=field, request=request))

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail(self, entry: GalleryPortrait) -> str | None:
        return self._link(entry, "thumbnail")

    @extend_schema_field(OpenApiTypes.URI)
    def get_preview(self, entry: GalleryPortrait) -> str | None:
        return self._link(entry, "preview")


API_PORTRAITS_PAGE_SIZE = 100  # portraits per page of the API (the detail carries the first page)


def portraits_page_url(request: Any, gallery: Gallery, number: int) -> str:
    """The absolute link of page `number` of the gallery's portraits (GET galleries/{id}/portraits/?page=N)."""
    from django.urls import reverse

    path = reverse("api-gallery-add-portraits", kwargs={"gallery_id": gallery.pk}) + f"?page={number}"
    return _absolute(request, path)


class GalleryDetailSerializer(GallerySerializer):
    portraits = serializers.SerializerMethodField(
        help_text=f"The first {API_PORTRAITS_PAGE_SIZE} portraits, in order; the rest at `portraits_next`."
    )
    portraits_next = serializers.SerializerMethodField(
        help_text="The next page of the portraits (GET galleries/{id}/portraits/?page=2), or null when "
        "`portraits` holds them all."
    )

    class Meta(GallerySerializer.Meta):
        fields = [*GallerySerializer.Meta.fields, "portraits", "portraits_next"]
        read_only_fields = fields

    def _page(self, gallery: Gallery) -> selectors.EntryPage:
        page = getattr(gallery, "_first_entry_page", None)
        if page is None:
            page = selectors.gallery_entries_page(gallery=gallery, number=1, size=API_PORTRAITS_PAGE_SIZE)
            gallery._first_entry_page = page  # type: ignore[attr-defined]
        return page

    @extend_schema_field(GalleryEntrySerializer(many=True))
    def get_portraits(self, gallery: Gallery) -> list[dict[str, Any]]:
        return GalleryEntrySerializer(self._page(gallery).entries, many=True, context=self.context).data

    @extend_schema_field(OpenApiTypes.URI)
    def get_portraits_next(self, gallery: Gallery) -> str | None:
        page = self._page(gallery)
        return portraits_page_url(self.context.get("request"), gallery, 2) if page.has_next else None


class GalleryPortraitsPageSerializer(serializers.Serializer):
    """A page of a gallery's portraits: the total, the links to the next and previous pages, the portraits."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = GalleryEntrySerializer(many=True)


class GalleryCreateSerializer(serializers.Serializer):
    client = serializers.IntegerField(help_text="The client's id.")
    title = serializers.CharField(max_length=services.MAX_TITLE_CHARS, required=False, allow_blank=True, default="")
    message = serializers.CharField(max_length=services.MAX_MESSAGE_CHARS, required=False, allow_blank=True, default="")
    portraits = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=services.MAX_GALLERY_PORTRAITS,
        help_text="Portrait ids of this client. Left out with `run`: the run's picks.",
    )
    run = serializers.IntegerField(required=False, help_text="A render run of the client (its picks by default).")
    group = serializers.IntegerField(
        required=False,
        help_text="A group of clients: the group's gallery (one link for all of them; its portraits only), sent to "
        "`client`, one of its people.",
    )
    password = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True, trim_whitespace=False, max_length=128
    )
    pin = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True, max_length=services.MAX_PIN_DIGITS
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Left out: the studio's default; null: never."
    )
    allow_more_like_me = serializers.BooleanField(required=False, allow_null=True, default=None)
    download_limit = serializers.IntegerField(required=False, allow_null=True, min_value=0, default=None)

    def validate_pin(self, value: str) -> str:
        value = value.strip()
        if value and not services.PIN_RE.match(value):
            raise serializers.ValidationError(services.PIN_RULE)
        return value


class GalleryUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=services.MAX_TITLE_CHARS, required=False)
    message = serializers.CharField(max_length=services.MAX_MESSAGE_CHARS, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="null: never expires.")
    allow_more_like_me = serializers.BooleanField(required=False)
    download_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, help_text="null: the studio's setting; 0: unlimited."
    )
    cover_portrait = IdField(
        required=False,
        allow_null=True,
        help_text="The picture at the top of the client's gallery: one of its portraits; null: the studio's cover.",
    )


class PortraitIdsSerializer(serializers.Serializer):
    portraits = serializers.ListField(child=IdField(), allow_empty=False, max_length=services.MAX_GALLERY_PORTRAITS)


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=services.MAX_PASSWORD_CHARS)


class PinSerializer(serializers.Serializer):
    pin = serializers.CharField(
        write_only=True,
        max_length=services.MAX_PIN_DIGITS,
        help_text=f"{services.MIN_PIN_DIGITS} to {services.MAX_PIN_DIGITS} digits.",
    )

    def validate_pin(self, value: str) -> str:
        if not services.PIN_RE.match(value.strip()):
            raise serializers.ValidationError(services.PIN_RULE)
        return value.strip()


class ExtendSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=services.MAX_EXPIRY_DAYS)


class EntitlementSerializer(serializers.ModelSerializer):
    granted_by = serializers.EmailField(source="granted_by.email", read_only=True, default=None)
    is_active = serializers.BooleanField(read_only=True)
    downloads_left = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: unlimited")

    class Meta:
        model = Entitlement
        fields = [
            "id",
            "gallery_id",
            "portrait_id",
            "size",
            "source",
            "order_ref",
            "download_limit",
            "downloads",
            "downloads_left",
            "is_active",
            "granted_by",
            "granted_at",
            "revoked_at",
        ]
        read_only_fields = fields


class GrantSerializer(PortraitIdsSerializer):
    size = serializers.ChoiceField(choices=Entitlement.Size.choices, default=Entitlement.Size.FULL)


class StatsDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    views = serializers.IntegerField()
    favorites = serializers.IntegerField()
    downloads = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    days = StatsDaySerializer(many=True, help_text="The last 30 days, oldest first, days without events included.")
    totals = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Since the gallery was made: views, unlocks, favorites, unfavorites, downloads, more_like_me, "
        "emails.",
    )


class GallerySettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = GallerySettings
        fields = ["download_limit", "expiry_days", "reminder_days", "allow_more_like_me", "updated_at"]
        read_only_fields = ["updated_at"]
        extra_kwargs = {
            "download_limit": {"min_value": 0, "max_value": services.MAX_DOWNLOAD_LIMIT},
            "expiry_days": {"min_value": 0, "max_value": services.MAX_EXPIRY_DAYS},
            "reminder_days": {"min_value": 0, "max_value": services.MAX_REMINDER_DAYS},
        }
