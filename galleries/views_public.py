"""The client's gallery: pages at /g/<gallery_token>/ inside the studio (no account; the unguessable token is the
credential, an optional password opens it, an optional PIN allows downloads: see galleries/access.py).

Thin views: the gallery is resolved first, whatever the method (an unknown token, another studio's included, is
the same 404 page; revoked and expired are 410 pages), then the method, then the password. Writes go through
galleries/client_services.py. Every POST is CSRF-protected (Django's middleware; htmx sends the token in a
header). htmx requests get fragments; the same forms work without JavaScript (full pages and redirects).
Pages are `Cache-Control: private, no-store` (they carry signed media links) and `noindex`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.db.models import Max
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from galleries import access, client_services
from galleries.client_services import ClientActionError
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait
from tenants.i18n import client_facing
from tenants.refusals import refusal_page

REMINDER_DAYS = 7  # the expiry notice turns into a warning this close to the date


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _gallery_url(gallery: Gallery, anchor: str = "") -> str:
    url = reverse("gallery_public", kwargs={"gallery_token": gallery.token})
    return f"{url}#{anchor}" if anchor else url


def _unavailable(request: HttpRequest, exc: access.GalleryUnavailable) -> HttpResponse:
    context = {"title": exc.title, "message": exc.message, "reason": exc.reason, "closed_on": exc.closed_on}
    response = render(request, "galleries/public/unavailable.html", context, status=exc.status)
    if _is_htmx(request):
        response["HX-Refresh"] = "true"  # a polling page shows the closed page instead
    return _private(response)


def _refused(request: HttpRequest, gallery: Gallery, exc: ClientActionError) -> HttpResponse:
    return _private(refusal_page(request, exc, template="galleries/public/refused.html", context={"gallery": gallery}))


def _to_gallery(request: HttpRequest, gallery: Gallery, anchor: str = "") -> HttpResponse:
    url = _gallery_url(gallery, anchor)
    if _is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url, permanent=False)


def gallery_page(
    *methods: str, needs_access: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Resolve the gallery (404/410 pages), then allow only `methods`, then require the password when the
    gallery has one (to the gallery page, which asks for it). The view gets the gallery as its second argument."""

    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @require_http_methods(allowed)  # applied once the gallery is found: an unknown token is 404 whatever the method
        def found(request: HttpRequest, gallery: Gallery, **kwargs: Any) -> HttpResponse:
            request.media_gallery = gallery  # type: ignore[attr-defined]  # media links made here are for it
            if needs_access and not access.has_access(request, gallery):
                return _to_gallery(request, gallery)
            return _private(view(request, gallery, **kwargs))

        @wraps(view)
        def wrapper(request: HttpRequest, gallery_token: str, **kwargs: Any) -> HttpResponse:
            studio = request.studio  # type: ignore[attr-defined]
            try:
                gallery = access.resolve_gallery(token=gallery_token, studio_name=studio.name)
            except access.GalleryUnavailable as exc:
                return _unavailable(request, exc)
            return found(request, gallery, **kwargs)

        return client_facing(wrapper)  # in the client's language (tenants/i18n.py)

    return decorator


def _entry(gallery: Gallery, portrait_id: Any) -> GalleryPortrait:
    return client_services.get_entry(gallery=gallery, portrait_id=portrait_id)


# --- The password and the PIN ---------------------------------------------------------------------------------


def _password_page(request: HttpRequest, gallery: Gallery, *, error: str = "", status: int = 200) -> HttpResponse:
    return render(request, "galleries/public/password.html", {"gallery": gallery, "error": error}, status=status)


def _locked_page(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """423: the gallery is locked after too many wrong passwords or PINs; only the studio can open it again."""
    return render(request, "galleries/public/locked.html", {"gallery": gallery}, status=423)


def _wait_page(template: str, request: HttpRequest, context: dict[str, Any], wait: int) -> HttpResponse:
    """429: this address typed too many wrong ones at this gallery; it may try again in `wait` seconds."""
    response = render(request, template, {**context, "error": access.wait_message(wait)}, status=429)
    response["Retry-After"] = str(wait)
    return response


@gallery_page("POST", "GET", needs_access=False)
def gallery_unlock(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """POST the gallery's password. Wrong: 403 with the form again; too many wrong ones from this address: 429;
    the gallery locked (too many from everyone): 423."""
    if request.method == "GET" or not gallery.has_password or access.has_access(request, gallery):
        return redirect(_gallery_url(gallery))
    attempt = access.unlock(request, gallery, request.POST.get("password"))
    if attempt.ok:
        client_services.record_event(gallery=gallery, kind=GalleryEvent.Kind.UNLOCK)
        return redirect(_gallery_url(gallery))
    if attempt.locked:
        return _locked_page(request, gallery)
    if attempt.wait:
        return _wait_page("galleries/public/password.html", request, {"gallery": gallery}, attempt.wait)
    return _password_page(request, gallery, error=_("That password isn't right. Check it and try again."), status=403)


def _safe_next(value: Any) -> str:
    return f"p-{int(value)}" if isinstance(value, str) and value.isdigit() and len(value) < 19 else ""


def _back_from_pin(gallery: Gallery, anchor: str) -> str:
    """Where the PIN page sends the browser back to: the portrait's tile (on its page) it was asked for."""
    return _tile_url(gallery, int(anchor[2:]) if anchor else None)


@gallery_page("GET", "POST")
def gallery_pin(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """The download PIN: asked once per browser session before the first download."""
    anchor = _safe_next(request.GET.get("next") or request.POST.get("next"))
    if not gallery.has_pin or (request.method == "GET" and access.has_pin(request, gallery)):
        return redirect(_back_from_pin(gallery, anchor))
    context: dict[str, Any] = {"gallery": gallery, "next": anchor.removeprefix("p-")}
    if gallery.is_secret_locked and not access.has_pin(request, gallery):
        return _locked_page(request, gallery)
    if request.method == "GET":
        return render(request, "galleries/public/pin.html", context)
    attempt = access.unlock_pin(request, gallery, request.POST.get("pin"))
    if attempt.ok:
        client_services.record_event(gallery=gallery, kind=GalleryEvent.Kind.UNLOCK, detail="download PIN")
        return redirect(_back_from_pin(gallery, anchor))
    if attempt.locked:
        return _locked_page(request, gallery)
    if attempt.wait:
        return _wait_page("galleries/public/pin.html", request, context, attempt.wait)
    context["error"] = _("That PIN isn't right. Check it and try again.")
    return render(request, "galleries/public/pin.html", context, status=403)


# --- The gallery ----------------------------------------------------------------------------------------------


def _expiry(gallery: Gallery) -> dict[str, Any]:
    if gallery.expires_at is None:
        return {}
    left = gallery.expires_at - timezone.now()
    return {"expires_at": gallery.expires_at, "expires_soon": left.days < REMINDER_DAYS, "days_left": left.days}


def _requests_context(
    gallery: Gallery, status: client_services.RequestStatus, after: int, *, error: str = ""
) -> dict[str, Any]:
    return {
        "gallery": gallery,
        "requests": status,
        "after": after,
        "poll_seconds": client_services.poll_seconds(),
        "request_error": error,
    }


def _page_url(gallery: Gallery, number: int, *, favorites_only: bool = False) -> str:
    """The gallery's page `number` (the first page is the gallery's own link), with the favorites filter."""
    query = {**({"show": "favorites"} if favorites_only else {}), **({"page": number} if number > 1 else {})}
    return _gallery_url(gallery) + (f"?{urlencode(query)}" if query else "")


def _tile_url(gallery: Gallery, portrait_id: int | None) -> str:
    """The portrait's tile in the grid: the page it is on, at its anchor."""
    if portrait_id is None:
        return _gallery_url(gallery)
    number = client_services.page_of(order=client_services.gallery_order(gallery=gallery), portrait_id=portrait_id)
    return f"{_page_url(gallery, number)}#p-{portrait_id}"


@gallery_page("GET", needs_access=False)
def gallery_public(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """The gallery (or its password page): title, welcome note, expiry, one page of the grid of watermarked
    previews (GALLERY_PAGE_SIZE tiles) with hearts, "More like me" and downloads; a full-screen viewer
    (static/galleries/gallery.js). Later pages: `?page=N`, a full page without JavaScript ("Next page"), or with
    htmx (the "Next page" link revealed at the end of the grid) only the tiles, appended. The cost of a page is
    the same whatever the size of the gallery: a fixed number of queries, one page of rows and tiles."""
    fragment = _is_htmx(request) and "page" in request.GET
    if not access.has_access(request, gallery):
        if fragment:
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return _locked_page(request, gallery) if gallery.is_secret_locked else _password_page(request, gallery)
    favorites_only = request.GET.get("show") == "favorites"
    status = client_services.fulfil_requests(gallery=gallery)
    order = client_services.gallery_order(gallery=gallery)
    page = client_services.page_entries(
        gallery=gallery,
        order=order,
        number=client_services.parse_page(request.GET.get("page")),
        favorites_only=favorites_only,
    )
    entitlements = client_services.active_entitlements(
        gallery=gallery, portrait_ids=[e.portrait_id for e in page.entries]
    )
    shown = client_services.tiles(
        gallery=gallery,
        entries=page.entries,
        entitlements=entitlements,
        pending_sources=status.pending_sources,
        start=page.offset + 1,
    )
    context = {
        "gallery": gallery,
        "tiles": shown,
        "page": page,
        "next_url": _page_url(gallery, page.number + 1, favorites_only=favorites_only) if page.has_next else "",
        "previous_url": _page_url(gallery, page.number - 1, favorites_only=favorites_only) if page.has_previous else "",
        "before_url": f"{_gallery_url(gallery)}p/{page.before.portrait_id}/" if page.before else "",
        "pin_needed": not access.has_pin(request, gallery),
        "fragment": fragment,
    }
    if fragment:
        return render(request, "galleries/public/_page.html", context)
    client_services.record_view(request=request, gallery=gallery)
    counts = client_services.counts(gallery=gallery, order=order)
    context |= {
        "count": counts.portraits,
        "favorite_count": counts.favorites,
        "favorites_only": favorites_only,
        "any_entitled": counts.entitled > 0,
        "any_unbought": counts.unbought > 0,  # on any page: the cart's form is there for all of them
        "cover_url": client_services.cover_url(gallery=gallery, studio=getattr(request, "studio", None)),
        **_requests_context(gallery, status, counts.last_entry_id),
        **_expiry(gallery),
    }
    return render(request, "galleries/public/gallery.html", context)


@gallery_page("GET")
def gallery_portrait(request: HttpRequest, gallery: Gallery, portrait_id: int) -> HttpResponse:
    """One portrait, large, with the previous and the next (the viewer without JavaScript)."""
    try:
        entry = _entry(gallery, portrait_id)
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    order = client_services.gallery_order(gallery=gallery).portrait_ids
    index = order.index(entry.portrait_id)
    entitlements = client_services.active_entitlements(gallery=gallery)
    tile = client_services.tiles(gallery=gallery, entries=[entry], entitlements=entitlements, start=index + 1)[0]
    context = {
        "gallery": gallery,
        "tile": tile,
        "grid_url": f"{_page_url(gallery, index // client_services.page_size() + 1)}#p-{entry.portrait_id}",
        "count": len(order),
        "previous_id": order[index - 1] if index > 0 else None,
        "next_id": order[index + 1] if index + 1 < len(order) else None,
        "pin_needed": not access.has_pin(request, gallery),
    }
    return render(request, "galleries/public/portrait.html", context)


@gallery_page("POST")
def gallery_favorite(request: HttpRequest, gallery: Gallery, portrait_id: int) -> HttpResponse:
    """Heart (favorite=1) or unheart (favorite=0) a portrait. htmx: the heart button again; else back."""
    try:
        entry = _entry(gallery, portrait_id)
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    favorite = request.POST.get("favorite", "1") in ("1", "true", "on")
    client_services.set_favorite(gallery=gallery, entry=entry, favorite=favorite)
    if _is_htmx(request):
        action = reverse("gallery_favorite", kwargs={"gallery_token": gallery.token, "portrait_id": entry.portrait_id})
        context = {"gallery": gallery, "entry": entry, "number": _number(request), "action": action}
        return render(request, "galleries/public/_heart.html", context)
    if request.POST.get("back") == "portrait":
        return redirect("gallery_portrait", gallery_token=gallery.token, portrait_id=entry.portrait_id)
    return redirect(_tile_url(gallery, entry.portrait_id))


def _number(request: HttpRequest) -> int | None:
    """The portrait's number on the page (the heart's label says it), sent back by the heart's form."""
    value = request.POST.get("n") or ""
    return int(value) if value.isdigit() and len(value) < 7 else None


@gallery_page("POST")
def gallery_more_like_me(request: HttpRequest, gallery: Gallery, portrait_id: int) -> HttpResponse:
    """Ask for a version of this portrait that looks more like the client (a job; it joins the gallery when it
    is done). htmx: the requests notice, which polls while it is on its way; else back to the gallery."""
    error = ""
    status_code = 200
    try:
        entry = _entry(gallery, portrait_id)
        client_services.ask_more_like_me(gallery=gallery, entry=entry)
    except ClientActionError as exc:
        if not _is_htmx(request):
            return _refused(request, gallery, exc)
        error, status_code = exc.message, exc.status
    if not _is_htmx(request):
        return redirect(_gallery_url(gallery, "gallery-requests"))
    status = client_services.fulfil_requests(gallery=gallery)
    after = GalleryPortrait.objects.filter(gallery=gallery).aggregate(last=Max("id"))["last"] or 0
    context = _requests_context(gallery, status, after, error=error)
    return render(request, "galleries/public/_requests.html", context, status=status_code)


@gallery_page("GET")
def gallery_updates(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """What the page polls while a "more like me" is on its way: the notice again, and the new portraits (those
    after `after`) placed right after the portrait before them in the gallery (htmx out-of-band swaps)."""
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = 0
    status = client_services.fulfil_requests(gallery=gallery)
    order = client_services.gallery_order(gallery=gallery)
    new_tiles = []
    fresh = [i for i, pk in enumerate(order.entry_ids) if pk > after]
    if fresh:
        ids = [order.entry_ids[i] for i in fresh]
        found = {e.pk: e for e in client_services.entries_by_ids(gallery=gallery, entry_ids=ids)}
        entitlements = client_services.active_entitlements(
            gallery=gallery, portrait_ids=[e.portrait_id for e in found.values()]
        )
        for index in fresh:
            entry = found.get(order.entry_ids[index])
            if entry is None:
                continue
            tile = client_services.tiles(gallery=gallery, entries=[entry], entitlements=entitlements, start=index + 1)
            new_tiles.append((tile[0], order.portrait_ids[index - 1] if index > 0 else None))
    context = {
        **_requests_context(gallery, status, max(order.entry_ids, default=after)),
        "new_tiles": new_tiles,
        "pin_needed": not access.has_pin(request, gallery),
    }
    return render(request, "galleries/public/_updates.html", context)


# --- Downloads ------------------------------------------------------------------------------------------------


def _see_other(url: str) -> HttpResponse:
    """303: the browser GETs the (download) link after a POST."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _pin_first(gallery: Gallery, next_id: Any = "") -> HttpResponse:
    url = reverse("gallery_pin", kwargs={"gallery_token": gallery.token})
    return redirect(f"{url}?{urlencode({'next': next_id})}" if next_id else url)


@gallery_page("POST")
def gallery_download(request: HttpRequest, gallery: Gallery, portrait_id: int) -> HttpResponse:
    """POST size=full|web: count one download on the client's entitlement, then send the browser to the file's
    expiring signed link (no watermark). 404 without an entitlement, 403 past the download limit; the PIN first
    when the gallery has one."""
    try:
        entry = _entry(gallery, portrait_id)
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    if not access.has_pin(request, gallery):
        return _pin_first(gallery, entry.portrait_id)
    size = request.POST.get("size") or Entitlement.Size.FULL
    try:
        client_services.claim_download(gallery=gallery, entry=entry, size=size)
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    url = client_services.download_url(gallery=gallery, portrait=entry.portrait, size=size)
    return _see_other(url)


@gallery_page("POST")
def gallery_download_all(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """ "Download all": one download counted per entitled portrait, then the ZIP's expiring signed link."""
    if not access.has_pin(request, gallery):
        return _pin_first(gallery)
    try:
        items = client_services.claim_zip(gallery=gallery)
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    token = client_services.zip_token(gallery=gallery, items=items)
    return _see_other(reverse("gallery_zip", kwargs={"gallery_token": gallery.token}) + "?" + urlencode({"t": token}))


@gallery_page("GET")
def gallery_zip(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    """The ZIP of a "Download all" (its signed link names the portraits counted): streamed, checked again now
    (entitlements still active, portraits still in the gallery)."""
    if not access.has_pin(request, gallery):
        return _pin_first(gallery)
    try:
        items = client_services.read_zip_token(gallery=gallery, token=request.GET.get("t", ""))
    except ClientActionError as exc:
        return _refused(request, gallery, exc)
    files = client_services.zip_files(gallery=gallery, items=items)
    if not files:
        return _refused(request, gallery, ClientActionError(_("None of these portraits can be downloaded now."), 404))
    response = StreamingHttpResponse(client_services.stream_zip(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{client_services.zip_name(gallery)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
