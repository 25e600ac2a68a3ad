"""The emails a studio's client gets about a gallery: "your gallery is ready" and the reminder before it closes;
and the one its owners and managers get when a gallery locks after too many wrong passwords or PINs.

Plain text and HTML (Django's EmailMultiAlternatives), branded with the studio (name, colour, contact), from
DEFAULT_FROM_EMAIL with the studio's contact address as Reply-To. Sent by the caller in `transaction.on_commit`
through Django's email backend (console by default; SMTP or a provider with EMAIL_URL).

They never contain the gallery's password or PIN (only hashes are stored): when the gallery has one, the email
says to use the one the studio gave.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from galleries.models import Gallery
from tenants.i18n import client_language_of
from tenants.models import Studio
from tenants.templatetags.studio_tags import brand_contrast, safe_brand

# Whitespace a subject is collapsed on (line breaks included), but not the non-breaking spaces of French typography.
LINE_BREAKS = re.compile(r"[^\S\u00a0\u202f]+")


def _context(*, gallery: Gallery, studio: Studio, link: str, logo_url: str | None) -> dict[str, Any]:
    brand = safe_brand(studio.primary_color)
    expires_at = timezone.localtime(gallery.expires_at) if gallery.expires_at else None
    days_left = None
    if expires_at is not None:
        days_left = max(0, (gallery.expires_at - timezone.now()).days)
    return {
        "studio": studio,
        "client": gallery.client,
        "gallery": gallery,
        "link": link,
        "logo_url": logo_url,
        "brand": brand,
        "brand_contrast": brand_contrast(brand),
        "expires_at": expires_at,
        "days_left": days_left,
        "has_password": gallery.has_password,
        "has_pin": gallery.has_pin,
    }


def _message(
    *, subject: str, template: str, context: dict[str, Any], to: str, studio: Studio
) -> EmailMultiAlternatives:
    text = render_to_string(f"galleries/email/{template}.txt", context)
    html = render_to_string(f"galleries/email/{template}.html", context)
    reply_to = [studio.contact_email] if studio.contact_email else None
    message = EmailMultiAlternatives(
        subject=" ".join(LINE_BREAKS.split(subject)).strip(),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=reply_to,
    )
    message.attach_alternative(html, "text/html")
    return message


def gallery_ready_message(
    *, gallery: Gallery, studio: Studio, link: str, logo_url: str | None = None
) -> EmailMultiAlternatives:
    """ "Your gallery is ready": the title, the studio's note, the link, the expiry date, password/PIN hints."""
    with translation.override(client_language_of(studio)):  # in the studio's language for its clients
        context = _context(gallery=gallery, studio=studio, link=link, logo_url=logo_url)
        return _message(
            subject=_("%(studio)s: your gallery “%(title)s” is ready")
            % {"studio": studio.name, "title": gallery.title},
            template="gallery_ready",
            context=context,
            to=gallery.client.email,
            studio=studio,
        )


def expiry_reminder_message(
    *, gallery: Gallery, studio: Studio, link: str, logo_url: str | None = None
) -> EmailMultiAlternatives:
    """The reminder before the gallery closes: when it closes, the link, password/PIN hints."""
    with translation.override(client_language_of(studio)):  # in the studio's language for its clients
        context = _context(gallery=gallery, studio=studio, link=link, logo_url=logo_url)
        when = context["expires_at"]
        names = {"studio": studio.name, "title": gallery.title}
        if when:
            english = translation.get_language().split("-")[0] == "en"
            day = formats.date_format(when, "j F" if english else "MONTH_DAY_FORMAT")
            subject = _("%(studio)s: your gallery “%(title)s” closes on %(day)s") % {**names, "day": day}
        else:
            subject = _("%(studio)s: your gallery “%(title)s” closes soon") % names
        return _message(
            subject=subject,
            template="expiry_reminder",
            context=context,
            to=gallery.client.email,
            studio=studio,
        )


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def gallery_locked_message(*, gallery: Gallery, studio: Studio, link: str, purpose: str, to: list[str]) -> EmailMessage:
    """To the studio's owners and managers (plain text): the gallery locked after too many wrong passwords
    (`purpose` "password") or PINs ("pin"), what that means for the client, and the link to unlock it. `link`
    is the studio's configured address, never the Host header of the request that locked it."""
    from galleries.access import gallery_rate

    budget, window = gallery_rate()
    secret = "download PIN" if purpose == "pin" else "password"
    context = {
        "gallery": gallery,
        "client": gallery.client,
        "studio": studio,
        "link": link,
        "purpose": purpose,
        "secret": secret,
        "what": "PINs" if purpose == "pin" else "passwords",
        "budget": budget,
        "window": _duration(window),
    }
    return EmailMessage(
        subject=" ".join(f"{studio.name}: the gallery “{gallery.title}” was locked".split()),
        body=render_to_string("galleries/email/gallery_locked.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
