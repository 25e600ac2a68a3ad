"""Account and studio pages. Thin: forms check input, services act, selectors read, tenants.access decides who
may see what (a signed-in non-member, or another studio's id, is a 404)."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import get_script_prefix, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from tenants import branding as branding_service
from tenants import selectors, services
from tenants.access import manager_required, membership_for, require_http_methods_of, studio_member_required
from tenants.dashboard import Panel, action_items, recent_activity
from tenants.dashboard import badges as dashboard_badges
from tenants.dashboard import panels as dashboard_panels
from tenants.forms import (
    AcceptSigninForm,
    AcceptSignupForm,
    BrandingForm,
    EmailAuthenticationForm,
    InviteForm,
    RoleForm,
    StudioPasswordResetForm,
)
from tenants.models import Invitation, Membership, Role, User

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def studio_path(slug: str) -> str:
    """The path-prefix URL of a studio on the platform host (the session cookie is valid there)."""
    return f"{get_script_prefix()}s/{slug}/"


# --- Signing in and out (inside a studio and on the platform) ----------------------------------------------------


class BadInputIs400:
    """Form views: a form sent back with errors answers 400, not 200 (bad input is a 4xx everywhere)."""

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)  # type: ignore[misc]
        response.status_code = 400
        return response


class StudioLoginView(BadInputIs400, auth_views.LoginView):
    """Sign in to the request's studio. A correct password of an account that is not a member of this studio
    does not sign in: the page says the account has no access, and nothing about the studio's data."""

    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and membership_for(request) is not None:
            return HttpResponseRedirect(self.get_success_url())
        return super().get(request, *args, **kwargs)

    def form_valid(self, form: EmailAuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if getattr(self.request, "studio", None) is not None and not selectors.is_member(user=user):
            return render(self.request, "registration/no_access.html", {"account_email": user.email}, status=403)
        return super().form_valid(form)


class StudioLogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You are signed out."))
        return response


class StudioPasswordResetView(BadInputIs400, auth_views.PasswordResetView):
    form_class = StudioPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["studio"] = getattr(self.request, "studio", None)
        return kwargs

    def form_valid(self, form: StudioPasswordResetForm) -> HttpResponse:
        self.extra_email_context = {
            "studio": getattr(self.request, "studio", None),
            "platform_name": settings.PLATFORM_NAME,
        }
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(BadInputIs400, auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        if not context.get("validlink"):
            kwargs.setdefault("status", 400)  # a used, expired or tampered link is bad input
        return super().render_to_response(context, **kwargs)


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"


class PasswordChangeView(BadInputIs400, auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def platform_home(request: HttpRequest) -> HttpResponse:
    """The platform's front door: a sign-in form; once signed in, the studios of the account (one: straight
    there; several: a chooser) and, for platform superusers, the way to the platform admin."""
    if request.user.is_authenticated:
        studios = selectors.studios_for_user(user=request.user)
        context = {"studios": studios, "signup_enabled": settings.SIGNUP_ENABLED}
        return render(request, "tenants/platform_home.html", context)
    form = EmailAuthenticationForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        login(request, user)
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        if next_url and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(next_url)
        studios = selectors.studios_for_user(user=user)
        if len(studios) == 1 and not user.is_superuser:
            return redirect(studio_path(studios[0].studio.slug))
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "next": request.POST.get("next") or request.GET.get("next") or "",
        "signup_enabled": settings.SIGNUP_ENABLED,
    }
    return render(request, "tenants/platform_home.html", context, status=status)


# --- Dashboard and branding -------------------------------------------------------------------------------------


@studio_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The studio's work first: what needs it now (each app's action items), this month (billing's panel), what
    happened lately (each app's activity), then the shortcuts and the other apps' panels (tenants.dashboard).
    An htmx request is a panel refreshing itself (the recent jobs, every 5 s while one runs: it selects its own
    section of the page), so it gets the registered panels only, without the items and activity it would drop."""
    counts = selectors.member_counts()
    own = []
    if request.headers.get("HX-Request") != "true":
        own = [
            Panel(template="tenants/_needs_you_now.html", context={"items": action_items(request)}, order=10),
            Panel(template="tenants/_recent_activity.html", context={"events": recent_activity(request)}, order=30),
            Panel(template="tenants/_shortcuts.html", context={"counts": counts}, order=40),
        ]
    context = {
        "panels": sorted([*own, *dashboard_panels(request)], key=lambda panel: panel.order),
        "counts": counts,
        "badges": dashboard_badges(request),
    }
    return render(request, "tenants/dashboard.html", context)


@studio_member_required(roles=[Role.OWNER])
@require_http_methods(["GET", "POST"])
def branding(request: HttpRequest) -> HttpResponse:
    """The owner's branding page: logo, accent colour and watermark, previewed live as they are chosen."""
    studio = request.studio  # type: ignore[attr-defined]
    initial = {
        "primary_color": studio.primary_color,
        "watermark_text": studio.watermark_text,
        "client_language": studio.client_language,
    }
    form = BrandingForm(request.POST or None, request.FILES or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                upload = form.cleaned_data.get("logo")
                logo_png = branding_service.clean_logo(upload) if upload else None
                cover = form.cleaned_data.get("gallery_cover")
                cover_jpeg = branding_service.clean_cover(cover) if cover else None
                branding_service.update_branding(
                    studio=studio,
                    user=request.user,
                    primary_color=form.cleaned_data["primary_color"],
                    watermark_text=form.cleaned_data["watermark_text"],
                    logo_png=logo_png,
                    remove_logo=form.cleaned_data["remove_logo"],
                    client_language=form.cleaned_data["client_language"] or None,
                    cover_jpeg=cover_jpeg,
                    remove_cover=form.cleaned_data["remove_gallery_cover"],
                )
            except branding_service.BrandingRefused as exc:
                field = {"logo_": "logo", "cover_": "gallery_cover"}.get(exc.code[: exc.code.find("_") + 1])
                form.add_error(field, exc.message)
                status = exc.status
            else:
                messages.success(request, _("Your branding is saved."))
                return redirect("branding")
        else:
            status = 400
    return render(request, "tenants/branding.html", {"form": form}, status=status)


@manager_required
@require_POST
def hide_onboarding(request: HttpRequest) -> HttpResponse:
    """Hide the dashboard's getting-started checklist (owners and managers)."""
    services.hide_onboarding(studio=request.studio, user=request.user)  # type: ignore[attr-defined]
    return redirect("dashboard")


def studio_logo(request: HttpRequest) -> HttpResponseBase:
    """The studio's logo (public branding: the sign-in page shows it too)."""
    return _branding_file(request, "logo")


def studio_gallery_cover(request: HttpRequest) -> HttpResponseBase:
    """The studio's gallery cover (public branding, shown at the top of its galleries)."""
    return _branding_file(request, "gallery_cover")


def _branding_file(request: HttpRequest, field: str) -> HttpResponseBase:
    studio = getattr(request, "studio", None)
    stored = getattr(studio, field, None) if studio is not None else None
    if not stored:
        raise Http404("No such image")
    try:
        handle = stored.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such image") from None
    content_type = mimetypes.guess_type(stored.name)[0] or "application/octet-stream"
    if not content_type.startswith("image/") or content_type == "image/svg+xml":
        content_type = "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Members and invitations ----------------------------------------------------------------------------------


def _members_page(request: HttpRequest, *, invite_form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    membership = membership_for(request)
    viewer_role = membership.role if membership else ""
    can_manage = membership is not None and membership.can_manage
    members = selectors.member_list()
    owners = sum(1 for m in members if m.role == Role.OWNER)
    rows = []
    for m in members:
        is_owner = m.role == Role.OWNER
        editable = can_manage and (viewer_role == Role.OWNER or not is_owner)
        last_owner = is_owner and owners == 1  # can't be demoted or removed: no controls to offer
        rows.append(
            {
                "membership": m,
                "editable": editable and not last_owner,
                "last_owner": last_owner,
                "is_me": m.user_id == request.user.pk,
            }
        )
    role_choices = Role.choices if viewer_role == Role.OWNER else [c for c in Role.choices if c[0] != Role.OWNER]
    context = {
        "rows": rows,
        "invitations": selectors.pending_invitations() if can_manage else [],
        "can_manage": can_manage,
        "role_choices": role_choices,
        "invite_form": invite_form or (InviteForm(inviter_role=viewer_role) if can_manage else None),
    }
    return render(request, "tenants/members.html", context, status=status)


@studio_member_required
def members(request: HttpRequest) -> HttpResponse:
    return _members_page(request)


@manager_required
def invite_member(request: HttpRequest) -> HttpResponse:
    membership = membership_for(request)
    assert membership is not None  # manager_required
    if request.method != "POST":
        return render(request, "tenants/invite.html", {"form": InviteForm(inviter_role=membership.role)})
    form = InviteForm(request.POST, inviter_role=membership.role)
    if form.is_valid():
        try:
            invitation = services.invite_member(
                studio=request.studio,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                base_url=request.build_absolute_uri(reverse("dashboard")),
            )
        except services.ActionRefused as exc:
            form.add_error("email" if exc.code in ("already_member", "already_invited") else None, exc.message)
            status = exc.status
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s as %(role)s.")
                % {"email": invitation.email, "role": invitation.get_role_display()},
            )
            return redirect("members")
    else:
        status = 400
    template = "tenants/invite.html" if request.POST.get("from") == "invite" else None
    if template:
        return render(request, template, {"form": form}, status=status)
    return _members_page(request, invite_form=form, status=status)


def _refused(request: HttpRequest, exc: services.ActionRefused) -> HttpResponse:
    messages.error(request, exc.message)
    return _members_page(request, status=exc.status)


def _get_invitation(invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, pk=invitation_id)


def _get_membership(membership_id: int) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)


@manager_required
@require_http_methods_of(_get_invitation, ["POST"])
def revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    try:
        services.revoke_invitation(invitation=invitation, revoked_by=request.user)
    except services.ActionRefused as exc:
        return _refused(request, exc)
    messages.success(
        request, _("The invitation for %(email)s is revoked; its link no longer works.") % {"email": invitation.email}
    )
    return redirect("members")


@manager_required
@require_http_methods_of(_get_membership, ["POST"])
def change_member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the studio's roles."))
        return _members_page(request, status=400)
    try:
        updated = services.change_member_role(
            membership=membership, role=form.cleaned_data["role"], changed_by=request.user
        )
    except services.ActionRefused as exc:
        return _refused(request, exc)
    messages.success(
        request, _("%(email)s is now %(role)s.") % {"email": updated.user.email, "role": updated.get_role_display()}
    )
    return redirect("members")


@manager_required
@require_http_methods_of(_get_membership, ["POST"])
def remove_member(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    email = membership.user.email
    leaving = membership.user_id == request.user.pk
    try:
        services.remove_member(membership=membership, removed_by=request.user)
    except services.ActionRefused as exc:
        return _refused(request, exc)
    if leaving:
        messages.success(request, _("You left %(studio)s.") % {"studio": request.studio.name})
        return redirect("login")
    messages.success(
        request, _("%(email)s was removed from %(studio)s.") % {"email": email, "studio": request.studio.name}
    )
    return redirect("members")


@sensitive_post_parameters("password", "password1", "password2")
@never_cache
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link from an invitation email. Tampered, expired, revoked or used links get a clear 4xx page. A new
    person sets a name and password; an existing account signs in (or is signed in already) and joins."""
    try:
        invitation = selectors.invitation_for_link(
            studio=request.studio, signed_token=token, max_age=settings.INVITATION_MAX_AGE_SECONDS
        )
    except selectors.InvitationLinkError as exc:
        return render(request, "tenants/invitation_invalid.html", {"error": exc}, status=exc.status)

    context: dict[str, Any] = {"invitation": invitation, "role_label": invitation.get_role_display()}
    user = request.user
    posted = request.method == "POST"

    def join(account: User) -> HttpResponse:
        try:
            services.accept_invitation(invitation=invitation, user=account)
        except services.ActionRefused as exc:
            return render(request, "tenants/invitation_invalid.html", {"error": exc}, status=exc.status)
        messages.success(request, _("Welcome to %(studio)s!") % {"studio": request.studio.name})
        return redirect("dashboard")

    if user.is_authenticated:
        if user.email.lower() != invitation.email.lower():
            context["mode"] = "wrong_account"
            return render(request, "tenants/invitation_accept.html", context, status=403)
        if posted:
            return join(user)
        context["mode"] = "confirm"
        return render(request, "tenants/invitation_accept.html", context)

    if User.objects.filter(email__iexact=invitation.email).exists():
        form: AcceptSigninForm | AcceptSignupForm = AcceptSigninForm(
            request.POST if posted else None, request=request, email=invitation.email
        )
        context["mode"] = "signin"
        if posted and form.is_valid():
            assert isinstance(form, AcceptSigninForm) and form.user is not None
            login(request, form.user)
            return join(form.user)
    else:
        form = AcceptSignupForm(request.POST if posted else None, email=invitation.email)
        context["mode"] = "signup"
        if posted and form.is_valid():
            try:
                new_user = services.register_from_invitation(
                    invitation=invitation,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password1"],
                )
            except services.ActionRefused as exc:
                return render(request, "tenants/invitation_invalid.html", {"error": exc}, status=exc.status)
            login(request, new_user, backend=MODEL_BACKEND)
            messages.success(request, _("Welcome to %(studio)s!") % {"studio": request.studio.name})
            return redirect("dashboard")
    context["form"] = form
    return render(request, "tenants/invitation_accept.html", context, status=400 if posted else 200)
