"""Galleries in the studio back office: read-only (they change through their pages, API and services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from galleries.models import Entitlement, Gallery, GalleryPortrait
from tenants.admin_scoping import ReadOnlyInline, StudioScopedAdmin


class GalleryPortraitInline(ReadOnlyInline):
    model = GalleryPortrait
    fields = ("position", "portrait", "is_favorite", "favorited_at", "added_at")
    readonly_fields = fields
    ordering = ("position", "id")


class EntitlementInline(ReadOnlyInline):
    model = Entitlement
    fields = ("portrait", "size", "source", "order_ref", "download_limit", "downloads", "granted_at", "revoked_at")
    readonly_fields = fields


@admin.register(Gallery)
class GalleryAdmin(StudioScopedAdmin):
    """The share token, password and PIN hashes are not shown."""

    list_display = (
        "id",
        "title",
        "client",
        "portraits",
        "favorites",
        "has_password",
        "has_pin",
        "shared_at",
        "expires_at",
        "revoked_at",
        "created_at",
    )
    list_filter = ("allow_more_like_me",)
    list_select_related = ("client",)
    search_fields = ("title", "client__name")
    ordering = ("-created_at",)
    fields = (
        "title",
        "client",
        "message",
        "run",
        "has_password",
        "has_pin",
        "pin_digits",
        "secret_locked_at",
        "secret_unlocked_at",
        "secret_unlocked_by",
        "expires_at",
        "reminder_sent_at",
        "shared_at",
        "revoked_at",
        "allow_more_like_me",
        "download_limit",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = (GalleryPortraitInline, EntitlementInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gallery]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                portrait_count=Count("entries", distinct=True),
                favorite_count=Count("entries", filter=Q(entries__is_favorite=True), distinct=True),
            )
        )

    @admin.display(description="Portraits", ordering="portrait_count")
    def portraits(self, obj: Gallery) -> int:
        return getattr(obj, "portrait_count", 0)

    @admin.display(description="Favorites", ordering="favorite_count")
    def favorites(self, obj: Gallery) -> int:
        return getattr(obj, "favorite_count", 0)

    @admin.display(description="Password", boolean=True)
    def has_password(self, obj: Gallery) -> bool:
        return obj.has_password

    @admin.display(description="Download PIN", boolean=True)
    def has_pin(self, obj: Gallery) -> bool:
        return obj.has_pin

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
