"""The Django admin as the studio back office: one site, two mounts.

- `/admin/` on the platform URLconf: platform superusers only. Every admin view runs (and its response is
  rendered) inside `platform_context()`, so they see and manage every studio's rows.
- `admin/` inside every studio: the studio's members (no `is_staff` needed) and platform superusers. The
  request already runs in the studio's tenant context; on top of that:
  * only ModelAdmins built on `StudioScopedAdmin` (tenant-owned models) exist there: every other registered
    model (Studio, User, third-party apps' models) answers 404 and is left out of the index;
  * querysets, foreign-key choices and list filters are limited to the studio, the `studio` field is hidden
    and set on save, and unique constraints that include it are still validated;
  * permissions come from the member's role: owners and managers may change, others only view (a ModelAdmin
    can say otherwise with `viewer_roles` / `editor_roles`);
  * a missing object, or another studio's, is a 404 (never Django's "doesn't exist, perhaps deleted" redirect);
  * a signed-in user who isn't a member gets 404; anonymous users go to the studio's login page.

This module is imported while Django populates its app registry (`StudioAdminConfig` is in INSTALLED_APPS), so
it imports models lazily, inside functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import update_wrapper
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.urls import NoReverseMatch, reverse

if TYPE_CHECKING:
    from django.forms import ModelForm

    from tenants.models import Studio

ALL_ROLES = frozenset({"owner", "manager", "photographer", "staff"})
MANAGING_ROLES = frozenset({"owner", "manager"})
SUPERUSER = "superuser"


class StudioAdminConfig(AdminConfig):
    """django.contrib.admin, with the studio-aware site as `admin.site`."""

    default_site = "tenants.admin_scoping.StudioAdminSite"


def request_studio(request: HttpRequest) -> Studio | None:
    return getattr(request, "studio", None)


def admin_role(request: HttpRequest) -> str | None:
    """ "superuser" for an active platform superuser; else the member's role in the request's studio; else None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return SUPERUSER
    if request_studio(request) is None:
        return None
    from tenants.access import membership_for

    membership = membership_for(request)
    return membership.role if membership is not None else None


def _is_tenant_owned(model: type[models.Model]) -> bool:
    from tenants.models import is_tenant_owned

    return is_tenant_owned(model)


# --- The site -------------------------------------------------------------------------------------------------


class StudioAdminSite(admin.AdminSite):
    site_header = "Studio SaaS"
    site_title = "Studio SaaS admin"
    index_title = "Back office"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.login_form = platform_login_form()

    def has_permission(self, request: HttpRequest) -> bool:
        role = admin_role(request)
        if request_studio(request) is None:
            return role == SUPERUSER
        return role is not None

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        studio = request_studio(request)
        if studio is not None:
            context.update(site_header=f"{studio.name} back office", site_title=f"{studio.name} admin")
            try:
                context["site_url"] = reverse("dashboard")
            except NoReverseMatch:
                context["site_url"] = "/"
        else:
            context.update(site_header="Studio SaaS platform", site_title="Studio SaaS platform admin")
        return context

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        inner = super().admin_view(view, cacheable)

        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request_studio(request) is not None:
                return self._studio_view(inner, view, request, *args, **kwargs)
            return self._platform_view(inner, request, *args, **kwargs)

        return update_wrapper(wrapper, inner)

    def _studio_view(
        self,
        inner: Callable[..., HttpResponse],
        view: Callable[..., HttpResponse],
        request: HttpRequest,
        *args: Any,
        **kwargs: Any,
    ) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path(), _studio_login_url(self.name))
        if not self.has_permission(request):
            raise Http404("Not found")  # signed in, not a member: this studio's admin doesn't exist for them
        match = getattr(request, "resolver_match", None)
        model_admin = getattr(getattr(match, "func", None), "model_admin", None)
        if model_admin is None and isinstance(getattr(view, "__self__", None), admin.ModelAdmin):
            model_admin = view.__self__  # a ModelAdmin's extra URL (e.g. the user admin's password page)
        if model_admin is not None:
            if not isinstance(model_admin, StudioScopedAdmin):
                raise Http404("Not found")  # platform-only models don't exist inside a studio
            if "object_id" in kwargs and model_admin.get_object(request, unquote(kwargs["object_id"])) is None:
                # Before any permission check (which would answer 403 for a model the role can't delete, say),
                # and for the bare "<object_id>/" redirect: a missing or foreign object is a 404 on every URL.
                raise Http404("Not found")
        return inner(request, *args, **kwargs)

    def _platform_view(
        self, inner: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        from tenants.context import platform_context

        if admin_role(request) != SUPERUSER:
            return inner(request, *args, **kwargs)  # Django's redirect to the admin login
        with platform_context():
            response = inner(request, *args, **kwargs)
            # Admin pages are TemplateResponses rendered after the view returns: render them here, while the
            # platform context (and so every queryset's SET LOCAL) still holds.
            if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                response.render()
            return response

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request_studio(request) is not None:
            # Inside a studio, people sign in on the studio's own (branded) login page.
            from django.contrib.auth.views import redirect_to_login

            next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
            return redirect_to_login(next_url, _studio_login_url(self.name))
        return super().login(request, extra_context)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().index(request, extra_context)
        if request_studio(request) is not None and isinstance(response, SimpleTemplateResponse):
            # Without the "recent actions" sidebar: Django's admin log is not per studio.
            response.template_name = "admin/studio_index.html"
        return response

    def _build_app_dict(self, request: HttpRequest, label: str | None = None) -> dict[str, Any]:
        app_dict = super()._build_app_dict(request, label)
        if request_studio(request) is None:
            return app_dict

        def visible(model: type[models.Model]) -> bool:
            return isinstance(self._registry.get(model), StudioScopedAdmin)

        # Keyed by app label, with or without `label` (Django 5.2: one app's dict is {label: {...}}).
        for key in list(app_dict):
            app_dict[key]["models"] = [m for m in app_dict[key]["models"] if visible(m["model"])]
            if not app_dict[key]["models"]:
                del app_dict[key]
        return app_dict


def platform_login_form() -> type:
    """The platform admin's login form: platform superusers only (is_staff alone is not enough). Built on first
    use: django.contrib.admin.forms imports auth models, which can't be imported while apps load."""
    from django.contrib.admin.forms import AdminAuthenticationForm

    class PlatformAuthenticationForm(AdminAuthenticationForm):
        def confirm_login_allowed(self, user: Any) -> None:
            if not (user.is_active and user.is_superuser):
                raise ValidationError(
                    "Only platform administrators can sign in here. Studio members use their studio's admin.",
                    code="invalid_login",
                )

    return PlatformAuthenticationForm


def _studio_login_url(site_name: str) -> str:
    try:
        return reverse("login")
    except NoReverseMatch:
        return reverse("admin:login", current_app=site_name)


# --- ModelAdmins ----------------------------------------------------------------------------------------------


class StudioScopedAdmin(admin.ModelAdmin):
    """The base of every ModelAdmin of a tenant-owned model. See the module docstring."""

    # Who may see the model in a studio's admin, and who may add, change and delete.
    viewer_roles: Iterable[str] = ALL_ROLES
    editor_roles: Iterable[str] = MANAGING_ROLES

    # --- permissions

    def _allowed(self, request: HttpRequest, roles: Iterable[str]) -> bool:
        role = admin_role(request)
        return role == SUPERUSER or (request_studio(request) is not None and role in set(roles))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, set(self.viewer_roles) | set(self.editor_roles))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.editor_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.editor_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.editor_roles)

    # --- rows

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)  # the tenant manager: the current studio, or all in the platform
        studio = request_studio(request)
        if studio is not None:
            qs = qs.filter(studio_id=studio.pk)  # explicit as well
        return qs

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        # Django redirects to the index with "doesn't exist. Perhaps it was deleted?"; a missing object, or one
        # of another studio, is a plain 404 here.
        raise Http404(f"No {opts.verbose_name} with this id.")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        studio = request_studio(request)
        if studio is not None:
            if obj.studio_id is not None and obj.studio_id != studio.pk:
                raise Http404("Not found")
            obj.studio = studio
        super().save_model(request, obj, form, change)

    # --- forms

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[Any]:
        return self.scope_fields(request, super().get_fields(request, obj))

    def scope_fields(self, request: HttpRequest, fields: Sequence[Any]) -> list[Any]:
        """Hidden inside a studio; shown first in the platform admin. (For subclasses that build their own.)"""
        fields = list(fields)
        if request_studio(request) is not None:
            return [f for f in fields if f != "studio"]
        return fields if "studio" in fields else ["studio", *fields]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        fieldsets = super().get_fieldsets(request, obj)
        if request_studio(request) is None:
            return fieldsets
        cleaned = []
        for name, options in fieldsets:
            fields = []
            for entry in options.get("fields", ()):
                if isinstance(entry, list | tuple):
                    entry = tuple(f for f in entry if f != "studio")
                    if entry:
                        fields.append(entry)
                elif entry != "studio":
                    fields.append(entry)
            cleaned.append((name, {**options, "fields": fields}))
        return cleaned

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return self.scope_readonly_fields(request, obj, super().get_readonly_fields(request, obj))

    def scope_readonly_fields(self, request: HttpRequest, obj: Any, readonly: Sequence[str]) -> list[str]:
        """`studio` is never a form field inside a studio, and read-only on an existing object in the platform
        admin (an object never moves to another studio)."""
        readonly = list(readonly)
        if request_studio(request) is not None:
            return [f for f in readonly if f != "studio"]
        if obj is not None and "studio" not in readonly:
            readonly.append("studio")
        return readonly

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Sequence[str] | None:
        exclude = list(super().get_exclude(request, obj) or [])
        if request_studio(request) is not None and "studio" not in exclude:
            exclude.append("studio")
        return exclude

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type[ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        return _scoped_form(form, request_studio(request))

    def formfield_for_foreignkey(self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any) -> Any:
        if "queryset" not in kwargs:
            queryset = _scoped_choices(db_field.remote_field.model, request_studio(request))
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any) -> Any:
        if "queryset" not in kwargs:
            queryset = _scoped_choices(db_field.remote_field.model, request_studio(request))
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- the change list

    def get_list_display(self, request: HttpRequest) -> Sequence[Any]:
        display = list(super().get_list_display(request))
        if request_studio(request) is None and "studio" not in display:
            display.append("studio")
        return display

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        filters = list(super().get_list_filter(request))
        if request_studio(request) is None:
            return ["studio", *[f for f in filters if f != "studio"]]
        # Inside a studio, a filter on a relation to a shared model (a user...) lists only the values the
        # studio's own rows use, never every row of the shared table.
        scoped: list[Any] = []
        for entry in filters:
            if entry == "studio":
                continue
            if isinstance(entry, str):
                field = _relation_field(self.model, entry)
                if field is not None and not _is_tenant_owned(field.related_model):
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            scoped.append(entry)
        return scoped


def _relation_field(model: type[models.Model], name: str) -> models.Field | None:
    if "__" in name:
        return None
    try:
        field = model._meta.get_field(name)
    except Exception:  # noqa: BLE001
        return None
    return field if getattr(field, "is_relation", False) and field.related_model is not None else None


def _scoped_choices(related: type[models.Model], studio: Studio | None) -> models.QuerySet | None:
    """Choices for a relation inside a studio: the studio itself, its own rows, or its members (users)."""
    if studio is None:
        return None
    from django.contrib.auth import get_user_model

    from tenants.models import Studio

    if related is Studio:
        return Studio.objects.filter(pk=studio.pk)
    if _is_tenant_owned(related):
        return related._default_manager.filter(studio_id=studio.pk)
    if related is get_user_model():
        return related._default_manager.filter(memberships__studio_id=studio.pk).distinct()
    return None


def _scoped_form(form: type[ModelForm], studio: Studio | None) -> type[ModelForm]:
    """The admin's form, with the studio set on the instance before validation (so unique constraints that
    include `studio` are checked although the field is hidden) and relations to tenant-owned rows required to
    be of the object's studio (this matters in the platform admin, where every studio's rows are choices)."""

    class ScopedForm(form):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if studio is not None and self.instance.studio_id is None:
                self.instance.studio = studio

        def _get_validation_exclusions(self) -> set[str]:
            exclusions = set(super()._get_validation_exclusions())
            if studio is not None:
                exclusions.discard("studio")
            return exclusions

        def clean(self) -> dict[str, Any]:
            cleaned = super().clean()
            studio_id = studio.pk if studio is not None else getattr(cleaned.get("studio"), "pk", None)
            if studio_id is None:
                studio_id = self.instance.studio_id
            for name, value in cleaned.items():
                values = value if isinstance(value, models.QuerySet | list | tuple) else [value]
                for item in values:
                    if (
                        isinstance(item, models.Model)
                        and _is_tenant_owned(type(item))
                        and studio_id is not None
                        and item.studio_id != studio_id
                    ):
                        self.add_error(name, "Choose one of this studio's own records.")
                        break
            return cleaned

    ScopedForm.__name__ = form.__name__
    return ScopedForm


class ReadOnlyInline(admin.TabularInline):
    """An inline of a studio's object that nobody changes here (its rows change through their pages, API and
    services): seen by whoever may see the object it is shown in (the studio's roles of the parent ModelAdmin,
    not Django's model permissions, which studio members don't have)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        parent = self.admin_site._registry.get(self.parent_model)
        return parent is not None and parent.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformOnlyAdmin(admin.ModelAdmin):
    """A ModelAdmin that exists only in the platform admin (inside a studio its URLs answer 404)."""

    def _platform(self, request: HttpRequest) -> bool:
        return request_studio(request) is None and admin_role(request) == SUPERUSER

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._platform(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._platform(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._platform(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._platform(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._platform(request)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with this id.")
