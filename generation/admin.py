"""Digital doubles, runs and portraits in the studio back office: read-only (they change through their services
and jobs)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from templates_app.base_models import UnknownBaseModel, get_model
from tenants.admin_scoping import StudioScopedAdmin
from tenants.context import current_studio_id
from tenants.media import signed_media_url


class _ReadOnlyStudioAdmin(StudioScopedAdmin):
    """Doubles and portraits change only through their services and jobs; the admin shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # delete on the double's page or erase the client: files leave storage too


@admin.register(DigitalDouble)
class DigitalDoubleAdmin(_ReadOnlyStudioAdmin):
    """Key material is never shown: the encrypted LoRA file and centroid are not among the fields."""

    list_display = ("id", "client", "status", "base_model", "licence", "commercial_use", "is_demo", "trained_at")
    list_filter = ("status", "base_model", "is_demo", "is_test_subject")
    list_select_related = ("client",)
    search_fields = ("client__name", "base_model")
    fields = (
        "client",
        "photo_set",
        "status",
        "base_model",
        "licence",
        "commercial_use",
        "family",
        "is_demo",
        "trigger",
        "class_word",
        "job",
        "config",
        "metrics",
        "is_test_subject",
        "created_by",
        "created_at",
        "trained_at",
    )
    readonly_fields = fields

    @staticmethod
    def _spec(obj: DigitalDouble) -> Any:

        try:
            return get_model(obj.base_model, enabled_only=False)
        except UnknownBaseModel:
            return None

    @admin.display(description="Licence")
    def licence(self, obj: DigitalDouble) -> str:
        spec = self._spec(obj)
        return (spec.licence or "not stated") if spec else "unknown model"

    @admin.display(description="Commercial use", boolean=True)
    def commercial_use(self, obj: DigitalDouble) -> bool | None:
        spec = self._spec(obj)
        return spec.commercial_use if spec else None


@admin.register(Portrait)
class PortraitAdmin(_ReadOnlyStudioAdmin):
    list_display = ("id", "double", "run", "rank", "likeness", "is_pick", "is_hidden", "is_demo", "created_at")
    list_filter = ("is_demo", "is_pick", "is_hidden")
    list_select_related = ("double",)
    fields = (
        "image_preview",
        "double",
        "job",
        "run",
        "item",
        "template_version",
        "rank",
        "likeness",
        "flags",
        "is_pick",
        "is_hidden",
        "is_demo",
        "parent",
        "recipe",
        "created_at",
    )
    readonly_fields = fields

    # Not named `preview`: the model's own `preview` file field would win, and the page would show a link to its
    # storage path instead of the signed image.
    @admin.display(description="Image")
    def image_preview(self, obj: Portrait) -> str:
        from django.utils.html import format_html

        if not obj.image or current_studio_id() != obj.studio_id:
            return "—"
        url = signed_media_url(obj=obj, field="image")
        return format_html('<img src="{}" alt="" class="admin-preview">', url)


class RenderRunItemInline(admin.TabularInline):
    model = RenderRunItem
    fields = ("position", "template_version", "images", "seeds", "gpu_seconds", "job")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RenderRun)
class RenderRunAdmin(_ReadOnlyStudioAdmin):
    """Render runs (generation/runs.py): their items and jobs. Started and retried on the run pages."""

    list_display = ("id", "double", "kind", "status", "images", "gpu_seconds", "created_by", "created_at")
    list_filter = ("kind",)
    list_select_related = ("double", "created_by")
    fields = ("double", "kind", "status", "images", "gpu_seconds", "created_by", "created_at")
    readonly_fields = fields
    inlines = (RenderRunItemInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RenderRun]:
        return super().get_queryset(request).prefetch_related("items__job")
