"""The studio's client pages and the client's own self-upload page.

Thin views: reads through clients.selectors, writes through clients.services. Studio pages are for members
(owners, managers and staff manage clients; photographers can look); another studio's client, set or link is
404 whatever the method (views of an object look it up before they check the method; views of none use
Django's require_http_methods). The self-upload page needs no account: its unguessable link token is the
credential.

Uploads: `clients.uploads.limit_upload_size(request)` must run before anything reads request.POST/FILES, so the
upload views are exempt from the CSRF middleware (which would read request.POST first) and check CSRF themselves
once the limiting handler is in place. The self-upload views carry no CSRF cookie at all (in-app and private
mobile browsers drop or block cookies): the secret token in the URL is what a cross-site forger can't know, and
a request whose Origin is another site is refused."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import F
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from clients import messages as client_messages
from clients import selectors, services, uploads
from clients.forms import (
    ClientForm,
    ClientSearchForm,
    ConsentTextForm,
    EraseClientForm,
    SelfConsentForm,
    SendLinkForm,
)
from clients.groups import groups_of
from clients.models import Client, ConsentText, Photo, PhotoSet, UploadLink
from jobs import keyset
from tenants.access import membership_for, require_http_methods_of, studio_member_required
from tenants.i18n import client_facing
from tenants.media import signed_media_url
from tenants.models import MANAGING_ROLES, Role
from tenants.services import ActionRefused

log = logging.getLogger(__name__)

PAGE_SIZE = 25
# Who may add, change and delete clients and their photos. Photographers only look.
CLIENT_MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
FILE_FIELDS = ("files", "file")

client_manager_required = studio_member_required(roles=CLIENT_MANAGING_ROLES)
consent_editor_required = studio_member_required(roles=MANAGING_ROLES)


# --- helpers --------------------------------------------------------------------------------------------------


def _can_manage(request: HttpRequest) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in CLIENT_MANAGING_ROLES


def _get_client(client_id: int) -> Client:
    return get_object_or_404(Client.objects.select_related("consent_text", "consent_collected_by"), pk=client_id)


def _get_set(client_id: int, photoset_id: int) -> PhotoSet:
    """A photo set of the studio, and of that client: a mismatched pair is 404 like any unknown id."""
    return get_object_or_404(
        PhotoSet.objects.select_related("client", "validation_job"), pk=photoset_id, client_id=client_id
    )


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "") or bool(request.headers.get("X-Requested-With"))


def _link_max_photos() -> int:
    return int(settings.INTAKE_UPLOAD_LINK_MAX_PHOTOS)


def _thumbnail_url(request: HttpRequest, photo: Photo) -> str | None:
    if not photo.thumbnail:
        return None

    return signed_media_url(obj=photo, field="thumbnail", request=request)


def _photo_json(request: HttpRequest, photo: Photo) -> dict[str, Any]:
    return {
        "id": photo.pk,
        "name": photo.original_name,
        "status": photo.status,
        "status_label": photo.get_status_display(),
        "reason_code": photo.reason_code,
        "reason": photo.client_reason,  # in the client's language on the self-upload link (clients/reasons.py)
        "thumbnail": _thumbnail_url(request, photo),
    }


def _json_error(message: str, status: int, *, code: str = "invalid") -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _same_origin(request: HttpRequest) -> bool:
    """False when the browser says the request comes from another site (the Origin header)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return True
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc == request.get_host()


def _files(request: HttpRequest) -> list[Any]:
    files: list[Any] = []
    for name in FILE_FIELDS:
        files.extend(request.FILES.getlist(name))
    return files


def _store_uploads(request: HttpRequest, photo_set: PhotoSet, *, source: str, user: Any = None) -> list[Photo]:
    """Store every uploaded file as a PENDING photo, every file the upload handler refused as a REJECTED one,
    then ask for validation. All or nothing: an IntakeError (no consent, set closed) leaves nothing stored."""
    refused = uploads.refused_uploads(request)
    files = _files(request)
    photos: list[Photo] = []
    with transaction.atomic():
        for name, code, message in refused:
            photos.append(
                services.add_photo(
                    photo_set=photo_set, upload=None, source=source, original_name=name, rejection=(code, message)
                )
            )
        for upload in files:
            photos.append(
                services.add_photo(photo_set=photo_set, upload=upload, source=source, original_name=upload.name or "")
            )
        if photos:
            services.request_validation(photo_set=photo_set, user=user)
    return photos


def _upload_count(request: HttpRequest) -> int:
    return len(_files(request)) + len(uploads.refused_uploads(request))


# --- clients --------------------------------------------------------------------------------------------------


@studio_member_required
def client_list(request: HttpRequest) -> HttpResponse:
    form = ClientSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    # Keyset pages (jobs.keyset): "Previous" / "Next" by cursor, no count, the same cost at any depth.
    page = keyset.page_for_request(
        selectors.clients_list(search=query),
        ordering=selectors.CLIENT_LIST_ORDER,
        cursor=request.GET.get("cursor"),
        page_size=PAGE_SIZE,
    )
    context = {
        "page": page,
        "clients": page.items,
        "form": form,
        "query": query,
        "can_manage": _can_manage(request),
    }
    return render(request, "clients/client_list.html", context)


@client_manager_required
def client_create(request: HttpRequest) -> HttpResponse:
    consent_text = services.current_consent_text()
    if request.method == "POST":
        form = ClientForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            client = services.create_client(
                name=data["name"],
                email=data["email"],
                phone=data["phone"],
                notes=data["notes"],
                created_by=request.user,
            )
            if data["consent_in_person"]:
                services.record_consent(
                    client=client,
                    consent_text=consent_text,
                    method=Client.ConsentMethod.STAFF,
                    ip=_client_ip(request),
                    collected_by=request.user,
                )
            messages.success(request, _("%(name)s was added.") % {"name": client.name})
            return redirect("client_detail", client_id=client.pk)
        status = 400
    else:
        form, status = ClientForm(), 200
    return render(request, "clients/client_form.html", {"form": form, "consent_text": consent_text}, status=status)


def _detail_context(request: HttpRequest, client: Client, **extra: Any) -> dict[str, Any]:
    photo_sets = selectors.client_photo_sets(client=client)
    return {
        "client": client,
        "photo_sets": photo_sets,
        "groups": list(groups_of(client)),
        "client_messages": client_messages.recent_messages(client=client),
        "can_manage": _can_manage(request),
        "erase_form": extra.pop("erase_form", None) or EraseClientForm(client=client),
        **extra,
    }


@studio_member_required
def client_detail(request: HttpRequest, client_id: int) -> HttpResponse:
    client = _get_client(client_id)
    return render(request, "clients/client_detail.html", _detail_context(request, client))


def _get_set_link(client_id: int, photoset_id: int, uploadlink_id: int) -> UploadLink:
    return _get_link(_get_set(client_id, photoset_id), uploadlink_id)


@client_manager_required
@require_http_methods_of(_get_client, ["POST"])
def client_erase(request: HttpRequest, client_id: int) -> HttpResponse:
    """POST: delete everything about the client, confirmed by typing their name; a deletion receipt remains."""
    client = _get_client(client_id)
    form = EraseClientForm(request.POST, client=client)
    if not form.is_valid():
        context = _detail_context(request, client, erase_form=form)
        return render(request, "clients/client_detail.html", context, status=400)
    try:
        receipt = services.erase_client(client=client, performed_by=request.user)
    except ActionRefused as exc:
        messages.error(request, exc.message)
        return redirect("client_detail", client_id=client.pk)
    messages.success(
        request,
        _("Everything about the client was deleted. Deletion receipt #%(number)s was recorded.")
        % {"number": receipt.pk},
    )
    return redirect("clients")


@client_manager_required
@require_http_methods_of(_get_client, ["GET"])
def client_export(request: HttpRequest, client_id: int) -> HttpResponse:
    """GET: a ZIP of everything kept about the client (for a data-access request)."""
    client = _get_client(client_id)
    filename, stream = services.export_client_zip(client=client)
    return FileResponse(stream, as_attachment=True, filename=filename, content_type="application/zip")


@studio_member_required
@require_http_methods(["GET", "POST"])
def consent_text(request: HttpRequest) -> HttpResponse:
    """The studio's consent text in one language (`?language=`, English by default; the clients' pages show the
    text of the client's language): the current version and its history; owners and managers publish new ones."""
    membership = membership_for(request)
    can_edit = membership is not None and membership.role in MANAGING_ROLES
    language = services.consent_language(request.POST.get("language") or request.GET.get("language"))
    current = services.current_consent_text(language=language)
    status = 200
    form = ConsentTextForm(initial={"body": current.body})
    if request.method == "POST":
        if not can_edit:
            raise Http404("Not found")
        form = ConsentTextForm(request.POST)
        if form.is_valid():
            if form.cleaned_data["body"].strip() == current.body.strip():
                form.add_error("body", _("The text is unchanged: edit it to publish a new version."))
                status = 400
            else:
                new = services.publish_consent_text(
                    body=form.cleaned_data["body"], created_by=request.user, language=language
                )
                messages.success(
                    request, _("Version %(version)s of the consent text was published.") % {"version": new.version}
                )
                return redirect(reverse("consent_text") + ("" if language == "en" else f"?language={language}"))
        else:
            status = 400
    history = ConsentText.objects.filter(language=language).select_related("created_by").order_by("-version")
    languages = [{"code": code, "name": name, "current": code == language} for code, name in settings.LANGUAGES]
    context = {
        "current": current,
        "history": history,
        "form": form,
        "can_edit": can_edit,
        "language": language,
        "languages": languages,
    }
    return render(request, "clients/consent_text.html", context, status=status)


# --- photo sets -----------------------------------------------------------------------------------------------


@client_manager_required
@require_http_methods_of(_get_client, ["POST"])
def photoset_create(request: HttpRequest, client_id: int) -> HttpResponse:
    client = _get_client(client_id)
    photo_set = services.create_photo_set(client=client, created_by=request.user)
    messages.success(request, _("A new photo set was created. Upload photos, or send the client an upload link."))
    return redirect("photoset_detail", client_id=client.pk, photoset_id=photo_set.pk)


def _set_context(request: HttpRequest, photo_set: PhotoSet, **extra: Any) -> dict[str, Any]:
    links = list(UploadLink.objects.filter(photo_set=photo_set).order_by("-created_at"))
    for link in links:
        link.url = request.build_absolute_uri(reverse("self_upload", kwargs={"link_token": link.token}))
    photos = list(selectors.photo_set_photos(photo_set=photo_set))
    return {
        "client": photo_set.client,
        "photo_set": photo_set,
        "photos": photos,
        "grid_version": _grid_version(photos),
        "readiness": selectors.readiness(photo_set=photo_set),
        "job": photo_set.validation_job,
        "links": links,
        "can_manage": _can_manage(request),
        "send_form": extra.pop("send_form", None) or SendLinkForm(initial={"email": photo_set.client.email}),
        "max_upload_mb": settings.INTAKE_MAX_UPLOAD_BYTES // (1024 * 1024),
        **extra,
    }


def _grid_version(photos: list[Any]) -> str:
    """What the photo grid shows, in a word: how many photos and how many have their verdict. The status poll
    sends back the grid (and the readiness meter) only when it changed, so verdicts appear as they arrive."""
    decided = sum(1 for photo in photos if photo.status != "pending")
    return f"{len(photos)}-{decided}"


@studio_member_required
def photoset_detail(request: HttpRequest, client_id: int, photoset_id: int) -> HttpResponse:
    photo_set = _get_set(client_id, photoset_id)
    return render(request, "clients/photoset_detail.html", _set_context(request, photo_set))


@studio_member_required
@require_http_methods_of(_get_set, ["GET"])
def photoset_status(request: HttpRequest, client_id: int, photoset_id: int) -> HttpResponse:
    """The validation progress the set page polls (htmx): it brings the refreshed grid and readiness meter along
    (out-of-band swaps) whenever a verdict arrived since the page's last poll, and once the job is finished."""
    photo_set = _get_set(client_id, photoset_id)
    context = _set_context(request, photo_set)
    context["grid_changed"] = request.GET.get("grid") != context["grid_version"]
    return render(request, "clients/_set_status.html", context)


@csrf_exempt
@client_manager_required
@require_http_methods_of(_get_set, ["POST"])
def photoset_upload(request: HttpRequest, client_id: int, photoset_id: int) -> HttpResponse:
    """POST one or several files (field `files`): JSON per file for the page's uploader, or back to the set page
    for a plain form. The CSRF check runs after the size-limiting upload handler is installed."""
    photo_set = _get_set(client_id, photoset_id)
    uploads.limit_upload_size(request)
    # A body that can't be read (a file name beyond the bound, too many files...) is answered before the CSRF
    # check, which would otherwise fail on the unreadable form; nothing is written either way.
    problem = uploads.unreadable_upload(request)
    if problem is not None:
        return _upload_refused(request, photo_set, problem.message, problem.status, code=problem.code)
    return _photoset_upload_checked(request, photo_set)


@csrf_protect
def _photoset_upload_checked(request: HttpRequest, photo_set: PhotoSet) -> HttpResponse:
    if _upload_count(request) == 0:
        return _upload_refused(request, photo_set, _("Choose at least one photo to upload."), 400)
    try:
        photos = _store_uploads(request, photo_set, source=Photo.Source.STUDIO, user=request.user)
    except services.IntakeError as exc:
        return _upload_refused(request, photo_set, str(exc), getattr(exc, "status", 400), code="refused")
    if _wants_json(request):
        job = PhotoSet.objects.filter(pk=photo_set.pk).values_list("validation_job_id", flat=True).first()
        return JsonResponse({"files": [_photo_json(request, p) for p in photos], "job": job}, status=201)
    count = len(photos)
    messages.success(
        request,
        ngettext("%(count)s photo uploaded; checking them now.", "%(count)s photos uploaded; checking them now.", count)
        % {"count": count},
    )
    return redirect("photoset_detail", client_id=photo_set.client_id, photoset_id=photo_set.pk)


def _upload_refused(
    request: HttpRequest, photo_set: PhotoSet, message: str, status: int, *, code: str = "invalid"
) -> HttpResponse:
    if _wants_json(request):
        return _json_error(message, status, code=code)
    context = _set_context(request, photo_set, upload_error=message)
    return render(request, "clients/photoset_detail.html", context, status=status)


# --- self-upload links (staff side) ---------------------------------------------------------------------------


@client_manager_required
@require_http_methods_of(_get_set, ["POST"])
def upload_link_create(request: HttpRequest, client_id: int, photoset_id: int) -> HttpResponse:
    photo_set = _get_set(client_id, photoset_id)
    try:
        services.create_upload_link(photo_set=photo_set, created_by=request.user)
    except services.IntakeError as exc:
        messages.error(request, str(exc))
        return redirect("photoset_detail", client_id=photo_set.client_id, photoset_id=photo_set.pk)
    messages.success(request, _("Upload link created. Copy it or send it to the client by email."))
    return redirect(
        reverse("photoset_detail", kwargs={"client_id": photo_set.client_id, "photoset_id": photo_set.pk}) + "#links"
    )


def _get_link(photo_set: PhotoSet, uploadlink_id: int) -> UploadLink:
    return get_object_or_404(UploadLink, pk=uploadlink_id, photo_set=photo_set)


@client_manager_required
@require_http_methods_of(_get_set_link, ["POST"])
def upload_link_revoke(request: HttpRequest, client_id: int, photoset_id: int, uploadlink_id: int) -> HttpResponse:
    photo_set = _get_set(client_id, photoset_id)
    link = _get_link(photo_set, uploadlink_id)
    services.revoke_upload_link(link=link)
    messages.success(request, _("The upload link was revoked: it no longer works."))
    return redirect(
        reverse("photoset_detail", kwargs={"client_id": photo_set.client_id, "photoset_id": photo_set.pk}) + "#links"
    )


@client_manager_required
@require_http_methods_of(_get_set_link, ["POST"])
def upload_link_send(request: HttpRequest, client_id: int, photoset_id: int, uploadlink_id: int) -> HttpResponse:
    """POST: email the link to the client (sent once the request's transaction commits)."""
    photo_set = _get_set(client_id, photoset_id)
    link = _get_link(photo_set, uploadlink_id)
    form = SendLinkForm(request.POST)
    if not link.is_usable:
        form.is_valid()
        form.add_error(None, _("This link is revoked or expired: create a new one to send."))
    if not form.is_valid():
        context = _set_context(request, photo_set, send_form=form)
        return render(request, "clients/photoset_detail.html", context, status=400)
    url = request.build_absolute_uri(reverse("self_upload", kwargs={"link_token": link.token}))
    services.send_upload_link(link=link, studio=request.studio, url=url, to=form.cleaned_data["email"])
    messages.success(request, _("The upload link was sent to %(email)s.") % {"email": form.cleaned_data["email"]})
    return redirect(
        reverse("photoset_detail", kwargs={"client_id": photo_set.client_id, "photoset_id": photo_set.pk}) + "#links"
    )


# --- the client's self-upload page (no account) ---------------------------------------------------------------


def _resolve_link(request: HttpRequest, link_token: str) -> UploadLink | HttpResponse:
    try:
        return services.resolve_upload_link(token=link_token)
    except services.UploadLinkError as exc:
        status = getattr(exc, "status", 404)
        context = {
            "title": getattr(exc, "title", "This link doesn't work"),
            "message": getattr(exc, "message", str(exc)),
        }
        if _wants_json(request):
            return _json_error(context["message"], status, code="link_invalid")
        return render(request, "clients/link_invalid.html", context, status=status)


def _self_context(request: HttpRequest, link: UploadLink, **extra: Any) -> dict[str, Any]:
    photo_set = link.photo_set
    photos = list(selectors.photo_set_photos(photo_set=photo_set))
    return {
        "link": link,
        "photo_set": photo_set,
        "client": photo_set.client,
        "photos": photos,
        "any_pending": any(p.status == Photo.Status.PENDING for p in photos),
        "remaining": max(0, _link_max_photos() - link.uploads),
        "max_photos": _link_max_photos(),
        "max_upload_mb": settings.INTAKE_MAX_UPLOAD_BYTES // (1024 * 1024),
        **extra,
    }


def _consent_page(request: HttpRequest, link: UploadLink, form: SelfConsentForm, status: int = 200) -> HttpResponse:
    consent = services.current_consent_text(language=translation.get_language())  # in the client's language
    context = {"link": link, "client": link.photo_set.client, "consent": consent, "form": form}
    return render(request, "clients/self_consent.html", context, status=status)


@csrf_exempt
@client_facing
def self_upload(request: HttpRequest, link_token: str) -> HttpResponse:
    """The client's page: consent first (if none is on record), then the upload step."""
    link = _resolve_link(request, link_token)
    if isinstance(link, HttpResponse):
        return link
    client = link.photo_set.client
    if request.method == "POST":
        if not _same_origin(request):
            return HttpResponse(_("This form was sent from another site."), status=403, content_type="text/plain")
        form = SelfConsentForm(request.POST)
        current = services.current_consent_text(language=translation.get_language())
        if form.is_valid():
            if request.POST.get("consent_text_id") != str(current.pk):
                form.add_error(None, _("The studio has just updated its consent text. Please read it again."))
                return _consent_page(request, link, form, status=409)
            services.record_consent(
                client=client, consent_text=current, method=Client.ConsentMethod.SELF, ip=_client_ip(request)
            )
            return redirect("self_upload", link_token=link.token)
        return _consent_page(request, link, form, status=400)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    if not client.has_consent:
        return _consent_page(request, link, SelfConsentForm())
    return render(request, "clients/self_upload.html", _self_context(request, link))


@csrf_exempt
@client_facing
def self_upload_files(request: HttpRequest, link_token: str) -> HttpResponse:
    """POST the client's photos (field `files`). At most INTAKE_UPLOAD_LINK_MAX_PHOTOS per link. Every refusal
    is the project's JSON error when JSON was asked (the page's uploader), the page with the message otherwise."""
    link = _resolve_link(request, link_token)
    if isinstance(link, HttpResponse):
        return link
    if request.method != "POST":
        if _wants_json(request):
            refused = _json_error(_("Send the photos with POST."), 405, code="method_not_allowed")
            refused["Allow"] = "POST"
            return refused
        return HttpResponseNotAllowed(["POST"])
    if not _same_origin(request):
        return _json_error(_("This upload was sent from another site."), 403, code="cross_site")
    uploads.limit_upload_size(request)
    problem = uploads.unreadable_upload(request)
    if problem is not None:
        return _self_refused(request, link, problem.message, problem.status, code=problem.code)
    count = _upload_count(request)
    if count == 0:
        return _self_refused(request, link, _("Choose at least one photo to upload."), 400)
    locked = UploadLink.objects.select_for_update().get(pk=link.pk)
    remaining = _link_max_photos() - locked.uploads
    if count > remaining:
        if remaining <= 0:
            message = _(
                "This link has taken its maximum of %(count)d photos. Ask the studio if you need to send more."
            ) % {"count": _link_max_photos()}
        else:
            message = ngettext(
                "This link takes %(count)d more photo: choose fewer.",
                "This link takes %(count)d more photos: choose fewer.",
                remaining,
            ) % {"count": remaining}
        return _self_refused(request, link, message, 429, code="too_many")
    try:
        photos = _store_uploads(request, link.photo_set, source=Photo.Source.SELF)
    except services.IntakeError as exc:
        return _self_refused(request, link, str(exc), getattr(exc, "status", 400), code="refused")
    UploadLink.objects.filter(pk=link.pk).update(uploads=F("uploads") + len(photos), last_used_at=timezone.now())
    if _wants_json(request):
        return JsonResponse({"files": [_photo_json(request, p) for p in photos]}, status=201)
    return redirect("self_upload", link_token=link.token)


def _self_refused(
    request: HttpRequest, link: UploadLink, message: str, status: int, *, code: str = "invalid"
) -> HttpResponse:
    if _wants_json(request):
        return _json_error(message, status, code=code)
    return render(
        request, "clients/self_upload.html", _self_context(request, link, upload_error=message), status=status
    )


@client_facing
def self_upload_photos(request: HttpRequest, link_token: str) -> HttpResponse:
    """The client's own photos with their verdicts (the page polls it while some are being checked)."""
    link = _resolve_link(request, link_token)
    if isinstance(link, HttpResponse):
        return link
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return render(request, "clients/_self_photos.html", _self_context(request, link))
