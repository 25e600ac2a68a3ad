"""Client photos through signed media links (tenants/media.py), and the client's self-upload page as an audience
of those links: registered from ClientsConfig.ready().

- "clients.photo" "thumbnail": every member, the API key an integration listed it with, and the self-upload page
  (objects of the link's photo set only); "original": owners and managers only (it may carry GPS and other
  metadata). Face crops are never served.
- The "upload_link" audience ("l:<id>"): the self-upload page has no account, so a link stands for the upload
  link it was made for, and only while that upload link is usable (revoking it kills its media links)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from clients.models import UploadLink
from clients.services import UploadLinkError, resolve_upload_link
from tenants.media import (
    ALL_ROLES,
    MANAGING_ROLES,
    Audience,
    MediaField,
    ObjectCheck,
    register_audience,
    register_media,
)


def request_upload_link(request: Any) -> UploadLink | None:
    """The usable upload link of the self-upload page the request is for (its URL carries `link_token`), or
    None. Resolved once per request."""
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, "_media_upload_link", False)
    if cached is not False:
        return cached
    link = None
    match = getattr(django_request, "resolver_match", None)
    token = (match.kwargs.get("link_token") if match is not None else None) or None
    if token:
        try:
            link = resolve_upload_link(token=token)
        except UploadLinkError:
            link = None
    django_request._media_upload_link = link
    return link


def admit_upload_link(request: HttpRequest, entry: MediaField, ref: int, payload: dict[str, Any]) -> ObjectCheck | None:
    """A link made for upload link `ref`: served while that link is usable, for objects of its photo set only."""
    link = UploadLink.objects.filter(pk=ref).first()
    if link is None or not link.is_usable:
        return None

    def of_the_links_set(obj: models.Model) -> bool:
        return getattr(obj, "photo_set_id", None) == link.photo_set_id

    return of_the_links_set


def register() -> None:
    register_audience(
        Audience(
            name="upload_link",
            prefix="l",
            from_request=request_upload_link,
            admits=admit_upload_link,
            after_api_keys=True,
        )
    )
    register_media("clients.photo", "thumbnail", roles=ALL_ROLES, api_keys=True, audiences=("upload_link",))
    register_media("clients.photo", "original", roles=MANAGING_ROLES)
