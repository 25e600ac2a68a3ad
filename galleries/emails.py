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
    """A rate window in words, in the active language ("30 days", "1 hour")."""
    from django.utils.translation import ngettext

    units = (
        (86400, lambda n: ngettext("%(count)s day", "%(count)s days", n)),
        (3600, lambda n: ngettext("%(count)s hour", "%(count)s hours", n)),
        (60, lambda n: ngettext("%(count)s minute", "%(count)s minutes", n)),
    )
    for size, words in units:
        if seconds >= size and seconds % size == 0:
            return words(seconds // size) % {"count": seconds // size}
    return ngettext("%(count)s second", "%(count)s seconds", seconds) % {"count": seconds}


def gallery_locked_message(
    *, gallery: Gallery, studio: Studio, link: str, purpose: str, to: list[str], language: str = ""
) -> EmailMessage:
    """To the studio's owners and managers (plain text, in `language`: theirs, User.language, else English): the
    gallery locked after too many wrong passwords (`purpose` "password") or PINs ("pin"), what that means for the
    client, and the link to unlock it. `link` is the studio's configured address, never the Host header of the
    request that locked it (a client's request, in the client's language: hence the explicit language)."""
    from galleries.access import gallery_rate

    budget, window = gallery_rate()
    with translation.override(language or settings.LANGUAGE_CODE):
        context = {
            "gallery": gallery,
            "client": gallery.client,
            "studio": studio,
            "link": link,
            "purpose": purpose,
            "budget": budget,
            "window": _duration(window),
        }
        subject = _("%(studio)s: the gallery “%(title)s” was locked") % {"studio": studio.name, "title": gallery.title}
        return EmailMessage(
            subject=" ".join(subject.split()),
            body=render_to_string("galleries/email/gallery_locked.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=to,
        )
