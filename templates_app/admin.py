"""Templates in the studio back office. Render settings change only through the designer (templates_app.versions:
every change is a new, immutable version), so versions and style LoRAs are read-only here; owners and managers
may rename or recategorise a template."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from templates_app.models import StyleLora, Template, TemplateVersion
from templates_app.render_settings import VALUE_FIELDS
from tenants.admin_scoping import ReadOnlyInline, StudioScopedAdmin

# The render settings as the designer shows them, less the reference image (a file: the admin would link its
# storage path, not a signed link).
VERSION_FIELDS = ("number", *VALUE_FIELDS, "note", "created_by", "created_at")


class TemplateVersionInline(ReadOnlyInline):
    model = TemplateVersion
    fk_name = "template"
    fields = VERSION_FIELDS
    readonly_fields = VERSION_FIELDS
    ordering = ("-number",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("style_lora", "created_by")


@admin.register(Template)
class TemplateAdmin(StudioScopedAdmin):
    list_display = ("name", "category", "status", "current_version", "starter_key", "updated_at")
    list_filter = ("status", "category")
    search_fields = ("name", "description")
    list_select_related = ("current_version",)
    fields = (
        "name",
        "category",
        "description",
        "status",
        "current_version",
        "starter_key",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("status", "current_version", "starter_key", "created_by", "created_at", "updated_at")
    inlines = (TemplateVersionInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # new templates are designed on the templates pages (they need a first version)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # archive instead: portraits point at the template's versions


@admin.register(StyleLora)
class StyleLoraAdmin(StudioScopedAdmin):
    list_display = ("name", "family", "base_model", "rank", "tensors", "size", "created_at")
    list_filter = ("family",)
    search_fields = ("name", "sha256")
    fields = (
        "name",
        "family",
        "base_model",
        "cross_attention_dim",
        "rank",
        "tensors",
        "size",
        "sha256",
        "created_by",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads are checked on the style LoRA page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
