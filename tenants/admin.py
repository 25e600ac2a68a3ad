"""Admin registrations for the tenants app. Tenant-owned models use StudioScopedAdmin (tenants/admin_scoping.py);
Studio and User exist only in the platform admin. Business actions go through the services, as in the views:
inside a studio, a role change, a removal or an invitation obeys the same rules as on the members page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tenants import api_keys, services
from tenants.admin_scoping import PlatformOnlyAdmin, StudioScopedAdmin, request_studio
from tenants.models import MANAGING_ROLES, ApiKey, Invitation, Membership, Studio, User


def _check_by_dry_run(action: Callable[[], Any]) -> None:
    """Run a service in a savepoint that is rolled back: its business rules judge the input, nothing stays
    (on_commit side effects registered inside are dropped too). A refusal becomes a form error."""
    try:
        with transaction.atomic():
            action()
            transaction.set_rollback(True)
    except services.ActionRefused as exc:
        raise ValidationError(exc.message, code=exc.code) from None


# --- Platform only --------------------------------------------------------------------------------------------


@admin.register(Studio)
class StudioAdmin(PlatformOnlyAdmin):
    list_display = ["name", "slug", "status", "custom_domain", "client_language", "created_at"]
    list_filter = ["status", "client_language"]
    search_fields = ["name", "slug", "custom_domain", "contact_email"]
    readonly_fields = ["created_at"]


class PlatformUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email",)


class PlatformUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(PlatformOnlyAdmin, DjangoUserAdmin):
    form = PlatformUserChangeForm
    add_form = PlatformUserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_superuser", "date_joined", "last_login"]
    list_filter = ["is_active", "is_superuser", "is_staff"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Platform access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)


# --- Tenant-owned ---------------------------------------------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(StudioScopedAdmin):
    """Members and roles. Inside a studio people join through invitations (no add here); role changes and
    removals follow the members page's rules (only owners touch owners, the last owner stays)."""

    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__full_name"]
    list_select_related = ["user"]
    fields = ["user", "role", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        readonly = ["created_at"]
        if obj is not None or request_studio(request) is not None:
            readonly.append("user")
        return self.scope_readonly_fields(request, obj, readonly)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request_studio(request) is None and super().has_add_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if request_studio(request) is not None:
            actions.pop("delete_selected", None)  # removals go one by one, through remove_member
        return actions

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if request_studio(request) is None or obj is None:
            return form

        class MembershipForm(form):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                role = cleaned.get("role")
                if role and role != obj.role:
                    _check_by_dry_run(
                        lambda: services.change_member_role(membership=obj, role=role, changed_by=request.user)
                    )
                return cleaned

        return MembershipForm

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if request_studio(request) is not None and change and "role" in form.changed_data:
            services.change_member_role(membership=obj, role=obj.role, changed_by=request.user)
            return
        super().save_model(request, obj, form, change)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except services.ActionRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:tenants_membership_change", args=[object_id], current_app=self.admin_site.name)
            )

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        if request_studio(request) is not None:
            services.remove_member(membership=obj, removed_by=request.user)
            return
        super().delete_model(request, obj)


@admin.register(Invitation)
class InvitationAdmin(StudioScopedAdmin):
    """Invitations. Adding one inside a studio sends the email, like the members page; the link's token is
    never shown."""

    viewer_roles = MANAGING_ROLES
    list_display = ["email", "role", "status", "invited_by", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    list_select_related = ["invited_by"]
    actions = ["revoke"]
    change_fields = [
        "email",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]

    @admin.display(description="Status")
    def status(self, invitation: Invitation) -> str:
        return invitation.status

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return self.scope_fields(request, ["email", "role"] if obj is None else self.change_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return self.scope_readonly_fields(request, obj, [] if obj is None else self.change_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request_studio(request) is not None and super().has_add_permission(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["fields"] = ["email", "role"]
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return form

        class InvitationForm(form):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if cleaned.get("email") and cleaned.get("role"):
                    _check_by_dry_run(lambda: _invite(request, cleaned["email"], cleaned["role"]))
                return cleaned

            def _get_validation_exclusions(self) -> set[str]:
                # token and expires_at are made by the service, not typed in.
                return {*super()._get_validation_exclusions(), "token", "expires_at"}

        return InvitationForm

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        invitation = _invite(request, obj.email, obj.role)
        for field in invitation._meta.concrete_fields:
            setattr(obj, field.attname, getattr(invitation, field.attname))
        obj._state.adding = False

    @admin.action(description="Revoke the selected invitations", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: models.QuerySet[Invitation]) -> None:
        done = 0
        for invitation in queryset:
            try:
                services.revoke_invitation(invitation=invitation, revoked_by=request.user)
                done += 1
            except services.ActionRefused as exc:
                self.message_user(request, exc.message, messages.WARNING)
        if done:
            self.message_user(request, f"{done} invitation(s) revoked.", messages.SUCCESS)


def _invite(request: HttpRequest, email: str, role: str) -> Invitation:
    return services.invite_member(
        studio=request.studio,
        email=email,
        role=role,
        invited_by=request.user,
        base_url=request.build_absolute_uri(reverse("dashboard")),
    )


@admin.register(ApiKey)
class ApiKeyAdmin(StudioScopedAdmin):
    """API keys, read-only: they are created on the API keys page (which shows the key once). Only the hash is
    stored; revoke with the action."""

    viewer_roles = MANAGING_ROLES
    list_display = ["name", "prefix", "is_active", "created_by", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    fields = ["name", "prefix", "hashed_key", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(boolean=True, description="Active")
    def is_active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: models.QuerySet[ApiKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_keys.revoke_api_key(api_key=api_key)
            count += 1
        self.message_user(request, f"{count} API key(s) revoked.", messages.SUCCESS)
