"""The studio's gallery pages at /galleries/: the list, a new gallery for a client (or from a run's picks), a
gallery with its portraits, access, sharing, entitlements and statistics, and the studio's gallery settings.

Thin views: reads through galleries.selectors, writes through galleries.services. Owners, managers and staff
manage galleries; photographers look (an action is a 403 with a message, once the gallery is known to be the
studio's); owners and managers change the studio's settings. Another studio's gallery, client, run, portrait or
entitlement is a 404 whatever the method and the role: objects are looked up before the method and the role are
checked (so views of an object check the method after the lookup; views of none use Django's require_GET etc.).
The client's own pages (the share link) are in galleries/views_public.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods

from clients.groups import members_of
from clients.models import Client
from galleries import selectors, services
from galleries.forms import (
    GalleryCreateForm,
    GalleryEditForm,
    GallerySettingsForm,
    GrantForm,
    PasswordForm,
    PinForm,
    PortraitsForm,
    end_of_day,
)
from galleries.models import Entitlement, Gallery, GalleryPortrait
from generation.models import RenderRun
from tenants.access import membership_for, require_http_methods_of, studio_member_required
from tenants.models import MANAGING_ROLES, Role

PAGE_SIZE = 25
# Who makes, changes and shares galleries, and grants downloads. Photographers look.
GALLERY_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
SETTINGS_ROLES = frozenset(MANAGING_ROLES)
# Who unlocks a gallery locked after too many wrong passwords or PINs.
UNLOCK_ROLES = frozenset({Role.OWNER})
UNLOCK_FORBIDDEN = gettext_lazy(
    "Only the studio's owners can unlock a gallery locked after too many wrong passwords or PINs."
)
ACT_FORBIDDEN = gettext_lazy(
    "Only the studio's owners, managers and staff can make, change and share galleries. Photographers can look."
)
SETTINGS_FORBIDDEN = gettext_lazy("Only the studio's owners and managers can change the gallery settings.")
CHART_HEIGHT = 72
CHART_BAR = 4
CHART_DAY = 14


# --- helpers --------------------------------------------------------------------------------------------------


def _has_role(request: HttpRequest, roles: frozenset[str]) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in roles


def _message_page(request: HttpRequest, *, title: str, message: str, status: int, back: str = "") -> HttpResponse:
    context = {"title": title, "message": message, "back": back or reverse("gallery_list")}
    return render(request, "galleries/studio/message.html", context, status=status)


def _forbidden(request: HttpRequest, message: str = ACT_FORBIDDEN, back: str = "") -> HttpResponse:
    return _message_page(request, title=_("Not allowed"), message=message, status=403, back=back)


def _detail_url(gallery: Gallery, anchor: str = "") -> str:
    return reverse("gallery_detail", kwargs={"gallery_id": gallery.pk}) + (f"#{anchor}" if anchor else "")


def share_url(request: HttpRequest, gallery: Gallery) -> str | None:
    """The absolute share link as this request sees the studio (None until the client's pages exist)."""
    try:
        return request.build_absolute_uri(reverse(services.PUBLIC_URL_NAME, kwargs={"gallery_token": gallery.token}))
    except NoReverseMatch:
        return None


def _studio_root(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("dashboard"))


def _chart(stats: selectors.Stats) -> dict[str, Any]:
    """Bars of an inline SVG: three per day (views, favorites, downloads), scaled to the busiest day."""
    peak = max(stats.peak, 1)
    days = []
    for index, day in enumerate(stats.days):
        x = index * CHART_DAY
        bars = []
        for offset, (kind, value) in enumerate(
            (("views", day.views), ("favorites", day.favorites), ("downloads", day.downloads))
        ):
            height = round(value * CHART_HEIGHT / peak) if value else 0
            bars.append({"kind": kind, "x": x + offset * CHART_BAR, "y": CHART_HEIGHT - height, "h": height})
        days.append({"day": day, "bars": bars})
    return {"days": days, "width": len(stats.days) * CHART_DAY, "height": CHART_HEIGHT, "bar": CHART_BAR - 1}


def _entries_context(request: HttpRequest, gallery: Gallery) -> dict[str, Any]:
    """One page of the gallery's portraits (`?page=`), each with its active entitlements."""
    page = selectors.gallery_entries_page(gallery=gallery, number=selectors.parse_page(request.GET.get("page")))
    by_portrait = selectors.active_entitlements_of(gallery=gallery, portrait_ids=[e.portrait_id for e in page.entries])
    for entry in page.entries:
        entry.entitlements = by_portrait.get(entry.portrait_id, [])  # type: ignore[attr-defined]
    return {
        "gallery": gallery,
        "entry_page": page,
        "entries": page.entries,
        "next_page": page.number + 1 if page.has_next else None,
        "remove_base": reverse("gallery_detail", kwargs={"gallery_id": gallery.pk}) + "portraits/",
        "cover_action": reverse("gallery_cover", kwargs={"gallery_id": gallery.pk}),
        "can_act": _has_role(request, GALLERY_ROLES),
    }


def _detail_context(request: HttpRequest, gallery: Gallery, **extra: Any) -> dict[str, Any]:
    selectors.with_status(gallery)
    entitlements, entitlement_count = selectors.recent_entitlements(gallery=gallery)
    studio_settings = services.gallery_settings()
    stats = selectors.gallery_stats(gallery=gallery)
    page = _entries_context(request, gallery)
    return {
        **page,
        "current": "gallery_detail",
        "gallery": gallery,
        "client": gallery.client,
        "favorite_count": page["entry_page"].favorites,
        "candidates": selectors.client_portraits(client=gallery.client, exclude_gallery=gallery),
        "entitlements": entitlements,
        "entitlement_count": entitlement_count,
        "sizes": Entitlement.Size.choices,
        "stats": stats,
        "chart": _chart(stats),
        "share_url": share_url(request, gallery),
        "studio_settings": studio_settings,
        "download_limit": services.effective_download_limit(gallery=gallery, studio_settings=studio_settings),
        "can_act": _has_role(request, GALLERY_ROLES),
        "can_unlock": _has_role(request, UNLOCK_ROLES),
        "pin_may_be_short": services.pin_may_be_short(gallery),
        "min_pin_digits": services.MIN_PIN_DIGITS,
        "edit_form": extra.pop("edit_form", None) or GalleryEditForm(gallery=gallery),
        "password_form": extra.pop("password_form", None) or PasswordForm(),
        "pin_form": extra.pop("pin_form", None) or PinForm(),
        **extra,
    }


def _detail(request: HttpRequest, gallery: Gallery, status: int = 200, **extra: Any) -> HttpResponse:
    return render(
        request, "galleries/studio/gallery_detail.html", _detail_context(request, gallery, **extra), status=status
    )


def _refused(request: HttpRequest, gallery: Gallery, exc: services.GalleryError) -> HttpResponse:
    """A service's refusal: the gallery page again with the message, answered with the refusal's status."""
    messages.error(request, exc.message)
    return _detail(request, gallery, status=exc.status)


def _guard(request: HttpRequest, gallery: Gallery) -> HttpResponse | None:
    """After the objects were found (404 otherwise) and the method checked (require_http_methods_of: POST only,
    405): the role (403 with a message)."""
    if not _has_role(request, GALLERY_ROLES):
        return _forbidden(request, back=_detail_url(gallery))
    return None


def _get_entry(gallery_id: int, portrait_id: int) -> GalleryPortrait:
    return selectors.get_entry(gallery=selectors.get_gallery(gallery_id=gallery_id), portrait_id=portrait_id)


def _get_entitlement(gallery_id: int, entitlement_id: int) -> Entitlement:
    return selectors.get_entitlement(
        gallery=selectors.get_gallery(gallery_id=gallery_id), entitlement_id=entitlement_id
    )


def _action(request: HttpRequest, gallery_id: int) -> tuple[Gallery, HttpResponse | None]:
    """The gallery (404 for another studio's), then the role (see _guard)."""
    gallery = selectors.get_gallery(gallery_id=gallery_id)
    return gallery, _guard(request, gallery)


# --- The list -------------------------------------------------------------------------------------------------


@studio_member_required
@require_GET
def gallery_list(request: HttpRequest) -> HttpResponse:
    """The studio's galleries with their client, counts, status and expiry: a fixed number of queries."""
    page = Paginator(selectors.gallery_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    galleries = [selectors.with_status(g, now=now) for g in page.object_list]
    context = {
        "current": "gallery_list",
        "page": page,
        "galleries": galleries,
        "can_act": _has_role(request, GALLERY_ROLES),
    }
    return render(request, "galleries/studio/gallery_list.html", context)


# --- New galleries --------------------------------------------------------------------------------------------


def _new_context(client: Client, form: GalleryCreateForm, **extra: Any) -> dict[str, Any]:
    portraits = selectors.client_portraits(client=client)
    chosen = {str(v) for v in (form["portraits"].value() or [])} if form.is_bound else None
    for portrait in portraits:
        portrait.chosen = (str(portrait.pk) in chosen) if chosen is not None else portrait.is_pick  # type: ignore[attr-defined]
    return {
        "current": "gallery_new",
        "client": client,
        "form": form,
        "portraits": portraits,
        "picks": sum(1 for p in portraits if p.is_pick),
        **extra,
    }


def _get_client(client_id: int) -> Client:
    return get_object_or_404(Client, pk=client_id)


def _get_run(renderrun_id: int) -> RenderRun:
    return get_object_or_404(RenderRun.objects.select_related("double__client"), pk=renderrun_id)


@studio_member_required
@require_http_methods_of(_get_client, ["GET", "POST"])
def gallery_new(request: HttpRequest, client_id: int) -> HttpResponse:
    """GET: a new gallery for the client: their shown portraits, picks preselected, and the studio's defaults.
    POST: create it and go to its page."""
    client = get_object_or_404(Client, pk=client_id)
    back = reverse("client_detail", kwargs={"client_id": client.pk})
    if not _has_role(request, GALLERY_ROLES):
        return _forbidden(request, back=back)
    defaults = services.gallery_settings()
    if request.method == "GET":
        initial = {
            "title": (_("Portraits of %(name)s") % {"name": client.name})[: services.MAX_TITLE_CHARS],
            "allow_more_like_me": defaults.allow_more_like_me,
            "expires_on": timezone.localdate() + timedelta(days=defaults.expiry_days) if defaults.expiry_days else None,
        }
        form = GalleryCreateForm(initial=initial)
        return render(request, "galleries/studio/gallery_new.html", _new_context(client, form))
    form = GalleryCreateForm(request.POST)
    if not form.is_valid():
        return render(request, "galleries/studio/gallery_new.html", _new_context(client, form), status=400)
    data = form.cleaned_data
    try:
        gallery = services.create_gallery(
            client=client,
            title=data["title"],
            portraits=data["portraits"],
            message=data["message"],
            password=data["password"],
            pin=data["pin"],
            expires_at=end_of_day(data["expires_on"]) if data["expires_on"] else None,
            never_expires=not data["expires_on"],
            allow_more_like_me=data["allow_more_like_me"],
            user=request.user,
        )
    except services.GalleryError as exc:
        context = _new_context(client, form, error=exc.message)
        return render(request, "galleries/studio/gallery_new.html", context, status=exc.status)
    messages.success(request, _("The gallery was created. Check it, then send it to the client."))
    return redirect("gallery_detail", gallery_id=gallery.pk)


@studio_member_required
@require_http_methods_of(_get_run, ["POST"])
def gallery_from_run(request: HttpRequest, renderrun_id: int) -> HttpResponse:
    """POST: a gallery of the run's picks for its client, with the studio's defaults."""
    run = get_object_or_404(RenderRun.objects.select_related("double__client", "group"), pk=renderrun_id)
    back = reverse("run_detail", kwargs={"renderrun_id": run.pk})
    if not _has_role(request, GALLERY_ROLES):
        return _forbidden(request, back=back)
    # A group run's gallery is the group's (one link for all of them), sent to its first member.
    group = run.group
    members = members_of(group) if group is not None else []
    recipient = members[0] if members else run.double.client
    try:
        gallery = services.create_gallery(client=recipient, run=run, user=request.user, group=group)
    except services.GalleryError as exc:
        return _message_page(request, title=_("No gallery was made"), message=exc.message, status=exc.status, back=back)
    messages.success(request, _("A gallery of the run's picks was created. Check it, then send it to the client."))
    return redirect("gallery_detail", gallery_id=gallery.pk)


# --- A gallery ------------------------------------------------------------------------------------------------


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["GET"])
def gallery_detail(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """The gallery's page: its settings, access, statistics, entitlements and one page of its portraits (later
    pages: `?page=N`, a full page without JavaScript, or only the tiles, appended, for htmx)."""
    gallery = selectors.get_gallery(gallery_id=gallery_id)
    if request.headers.get("HX-Request") == "true" and "page" in request.GET:
        return render(request, "galleries/studio/_entries.html", _entries_context(request, gallery))
    return _detail(request, gallery)


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_edit(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST: title, welcome note, expiry, "more like me", downloads per portrait."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    form = GalleryEditForm(request.POST, gallery=gallery)
    if not form.is_valid():
        return _detail(request, gallery, status=400, edit_form=form)
    data = form.cleaned_data
    try:
        services.update_gallery(
            gallery=gallery,
            title=data["title"],
            message=data["message"],
            allow_more_like_me=data["allow_more_like_me"],
            download_limit=data["download_limit"],
            expires_at=form.expires_at(),
        )
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("The gallery's settings were saved."))
    return redirect(_detail_url(gallery, "settings"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_password(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST `action=set` with `password`, or `action=clear`."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    if request.POST.get("action") == "clear":
        services.clear_password(gallery=gallery)
        messages.success(request, _("The password was removed: anyone with the link can open the gallery."))
        return redirect(_detail_url(gallery, "access"))
    form = PasswordForm(request.POST)
    if not form.is_valid():
        return _detail(request, gallery, status=400, password_form=form)
    try:
        services.set_password(gallery=gallery, password=form.cleaned_data["password"])
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("The password was set. Tell the client yourself: it is never emailed."))
    return redirect(_detail_url(gallery, "access"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_pin(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST `action=set` with `pin`, or `action=clear`."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    if request.POST.get("action") == "clear":
        services.clear_pin(gallery=gallery)
        messages.success(request, _("The download PIN was removed."))
        return redirect(_detail_url(gallery, "access"))
    form = PinForm(request.POST)
    if not form.is_valid():
        return _detail(request, gallery, status=400, pin_form=form)
    try:
        services.set_pin(gallery=gallery, pin=form.cleaned_data["pin"])
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("The download PIN was set. Tell the client yourself: it is never emailed."))
    return redirect(_detail_url(gallery, "access"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_unlock_secrets(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST: an owner unlocks a gallery locked after too many wrong passwords or PINs (the counts start again)."""
    gallery = selectors.get_gallery(gallery_id=gallery_id)
    if not _has_role(request, UNLOCK_ROLES):
        return _forbidden(request, UNLOCK_FORBIDDEN, back=_detail_url(gallery, "access"))
    try:
        services.unlock_secrets(gallery=gallery, user=request.user)
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("The gallery was unlocked: the client can type the password and PIN again."))
    return redirect(_detail_url(gallery, "access"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_portraits_add(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST `portraits` (ids): add portraits of the gallery's client."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    form = PortraitsForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("portraits", [_("Choose at least one portrait.")])))
        return _detail(request, gallery, status=400)
    try:
        added = services.add_portraits(gallery=gallery, portraits=form.cleaned_data["portraits"])
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    count = len(added)
    messages.success(
        request, ngettext("%(count)s portrait added.", "%(count)s portraits added.", count) % {"count": count}
    )
    return redirect(_detail_url(gallery, "portraits"))


@studio_member_required
@require_http_methods_of(_get_entry, ["POST"])
def gallery_portrait_remove(request: HttpRequest, gallery_id: int, portrait_id: int) -> HttpResponse:
    """POST: take the portrait out of the gallery."""
    gallery = selectors.get_gallery(gallery_id=gallery_id)
    entry = selectors.get_entry(gallery=gallery, portrait_id=portrait_id)
    refused = _guard(request, gallery)
    if refused is not None:
        return refused
    try:
        services.remove_portrait(gallery=gallery, portrait=entry.portrait_id)
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("Portrait #%(number)s was taken out of the gallery.") % {"number": entry.portrait_id})
    return redirect(_detail_url(gallery, "portraits"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_cover(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST `portrait`: the gallery's cover, one of its portraits; empty: the studio's gallery cover."""
    from django.utils.translation import gettext as _

    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    raw = (request.POST.get("portrait") or "").strip()
    if raw and not raw.isdigit():
        return _refused(request, gallery, services.GalleryError(_("Choose one of the gallery’s portraits.")))
    try:
        services.set_cover(gallery=gallery, portrait=int(raw) if raw else None)
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    if raw:
        messages.success(request, _("Portrait #%(number)s is the gallery’s cover.") % {"number": raw})
    else:
        messages.success(request, _("The gallery shows your studio’s cover again."))
    return redirect(_detail_url(gallery, "portraits"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_share(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST: email the client that their gallery is ready (sent when the request's transaction commits)."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    try:
        services.share(gallery=gallery, user=request.user, base_url=_studio_root(request))
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    messages.success(request, _("The gallery was sent to %(email)s.") % {"email": gallery.client.email})
    return redirect(_detail_url(gallery, "share"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_revoke(request: HttpRequest, gallery_id: int) -> HttpResponse:
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    services.revoke(gallery=gallery)
    messages.success(request, _("The link was revoked: the gallery no longer opens. Restore it to open it again."))
    return redirect(_detail_url(gallery, "share"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_restore(request: HttpRequest, gallery_id: int) -> HttpResponse:
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    services.restore(gallery=gallery)
    messages.success(request, _("The link works again."))
    return redirect(_detail_url(gallery, "share"))


@studio_member_required
@require_http_methods_of(selectors.get_gallery, ["POST"])
def gallery_grant(request: HttpRequest, gallery_id: int) -> HttpResponse:
    """POST `portraits` (ids) and `size`: let the client download them (granted by staff)."""
    gallery, refused = _action(request, gallery_id)
    if refused is not None:
        return refused
    form = GrantForm(request.POST)
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, " ".join(errors))
        return _detail(request, gallery, status=400)
    data = form.cleaned_data
    try:
        granted = services.grant_entitlements(
            gallery=gallery, portraits=data["portraits"], size=data["size"], user=request.user
        )
    except services.GalleryError as exc:
        return _refused(request, gallery, exc)
    count = len(granted)
    label = Entitlement.Size(data["size"]).label.lower()
    messages.success(
        request,
        ngettext(
            "The client may download %(count)s portrait (%(label)s).",
            "The client may download %(count)s portraits (%(label)s).",
            count,
        )
        % {"count": count, "label": label},
    )
    return redirect(_detail_url(gallery, "downloads"))


@studio_member_required
@require_http_methods_of(_get_entitlement, ["POST"])
def gallery_entitlement_revoke(request: HttpRequest, gallery_id: int, entitlement_id: int) -> HttpResponse:
    gallery = selectors.get_gallery(gallery_id=gallery_id)
    entitlement = selectors.get_entitlement(gallery=gallery, entitlement_id=entitlement_id)
    refused = _guard(request, gallery)
    if refused is not None:
        return refused
    services.revoke_entitlement(entitlement=entitlement)
    messages.success(
        request,
        _("The client can no longer download portrait #%(number)s this way.") % {"number": entitlement.portrait_id},
    )
    return redirect(_detail_url(gallery, "downloads"))


# --- The studio's settings ------------------------------------------------------------------------------------


@studio_member_required
@require_http_methods(["GET", "POST"])
def gallery_settings(request: HttpRequest) -> HttpResponse:
    """Every member sees the studio's gallery defaults; owners and managers change them."""
    current = services.gallery_settings()
    can_edit = _has_role(request, SETTINGS_ROLES)
    status = 200
    if request.method == "POST":
        if not can_edit:
            return _forbidden(request, SETTINGS_FORBIDDEN, back=reverse("gallery_settings"))
        form = GallerySettingsForm(request.POST, instance=current)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.update_settings(
                    download_limit=data["download_limit"],
                    expiry_days=data["expiry_days"],
                    reminder_days=data["reminder_days"],
                    allow_more_like_me=data["allow_more_like_me"],
                    user=request.user,
                )
            except services.GalleryError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(request, _("The gallery settings were saved."))
                return redirect("gallery_settings")
        else:
            status = 400
    else:
        form = GallerySettingsForm(instance=current)
    context = {"current": "gallery_settings", "form": form, "settings": current, "can_edit": can_edit}
    return render(request, "galleries/studio/gallery_settings.html", context, status=status)
