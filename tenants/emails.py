"""Emails about studio accounts, rendered when the action happens and sent when its transaction commits."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse

from tenants.models import Invitation, Role, Studio, User


def studio_base_url(studio: Studio) -> str:
    """The studio's absolute root URL when no request says where it is: its custom domain, else the path
    prefix on settings.PLATFORM_BASE_URL."""
    base = settings.PLATFORM_BASE_URL.rstrip("/")
    if studio.custom_domain:
        scheme = base.split("://", 1)[0] if "://" in base else "https"
        return f"{scheme}://{studio.custom_domain}/"
    return f"{base}/s/{studio.slug}/"


def invitation_link(*, studio: Studio, signed_token: str, base_url: str | None = None) -> str:
    """The absolute accept link: the studio root (the request's own, or the configured one) plus the route."""
    route = reverse("accept_invitation", urlconf=settings.STUDIO_URLCONF, kwargs={"token": signed_token})
    route = route[len(get_script_prefix()) :] if route.startswith(get_script_prefix()) else route.lstrip("/")
    root = base_url or studio_base_url(studio)
    return root.rstrip("/") + "/" + route


def invitation_message(*, invitation: Invitation, studio: Studio, link: str, inviter: User | None) -> EmailMessage:
    """The invitation email (plain text), branded with the studio."""
    context = {
        "studio": studio,
        "invitation": invitation,
        "role_label": Role(invitation.role).label,
        "link": link,
        "inviter": inviter,
    }
    subject = " ".join(render_to_string("tenants/email/invitation_subject.txt", context).split())
    body = render_to_string("tenants/email/invitation.txt", context)
    reply_to = [studio.contact_email] if studio.contact_email else None
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[invitation.email],
        reply_to=reply_to,
    )
