"""Self-serve sign-up: a studio creates itself, its owner's email confirmed by a signed link.

1. `request_signup` (the sign-up form): the studio's name, its address on the platform (`/s/<slug>/`), the
   owner's name, email and password. The address is checked (`slug_problem`: format, reserved names, studios
   that exist, addresses retired from deleted or renamed studios, another person's pending sign-up), a
   `SignupRequest` is stored with the password hashed, and the email with the signed link goes out when the
   transaction commits. Nothing else exists yet: an unconfirmed address can't sign in, own a studio, or hold an
   address beyond its request's lifetime (SIGNUP_MAX_AGE_SECONDS).
2. `confirm_signup` (the link, then a button: mail scanners open links, only a person presses it): the account
   (or the existing account of that email, whose password stays as it was), the studio and the owner's
   membership are created in one transaction, and `studio_signed_up` is sent in it (billing grants the trial's
   GPU credits, SIGNUP_TRIAL_CREDITS). The owner lands on the dashboard's getting-started checklist
   (tenants/onboarding.py).

The same answer is given whether or not an account exists for the email (no account discovery); the email
itself says which case it is. Abuse is limited by the view: per address and per email rate limits
(tenants/ratelimits.py, django-ratelimit), a hidden honeypot field, and SIGNUP_ENABLED to close sign-up.

Addresses are never reused: a studio deleted or renamed leaves its old slug in `RetiredSlug` (signal receivers
below, connected in tenants.apps), so a link a client kept never leads to another studio.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from tenants.context import platform_context, tenant_context
from tenants.models import RESERVED_SLUGS, Membership, RetiredSlug, Role, SignupRequest, Studio, User, slug_validator
from tenants.refusals import Refused

log = structlog.get_logger("tenants.signup")

SIGNUP_SALT = "tenants.signup"
#: Addresses no studio may take besides tenants.models.RESERVED_SLUGS (the platform's own paths and names people
#: would trust); SIGNUP_RESERVED_SLUGS adds more.
RESERVED_FOR_SIGNUP = frozenset(
    {
        "about", "account", "accounts", "api-docs", "assets", "billing", "blog", "contact", "dashboard", "demo",
        "docs", "help", "home", "login", "logout", "mail", "official", "platform", "pricing", "privacy",
        "register", "root", "security", "settings", "signin", "signup", "staff", "status", "stripe", "support",
        "system", "terms", "test", "webhooks",
    }
)  # fmt: skip

#: Sent inside confirm_signup's transaction once the studio, its owner and the membership exist: receivers may
#: write in the studio (billing grants the trial credits). Arguments: studio, user.
studio_signed_up = Signal()


class SignupRefused(Refused):
    """Sign-up said no: the message says why (and, for the address, what to do)."""


def max_age_seconds() -> int:
    return int(getattr(settings, "SIGNUP_MAX_AGE_SECONDS", 48 * 3600))


def reserved_slugs() -> frozenset[str]:
    extra = {str(slug).strip().lower() for slug in getattr(settings, "SIGNUP_RESERVED_SLUGS", ()) or ()}
    return RESERVED_SLUGS | RESERVED_FOR_SIGNUP | extra


def suggest_slug(name: str) -> str:
    """An address made from the studio's name: "Studio Lumière, Lyon" -> "studio-lumiere-lyon"."""
    slug = slugify(name)[:50].strip("-")
    return slug


def slug_problem(slug: str, *, email: str = "", exclude: SignupRequest | None = None) -> str | None:
    """Why `slug` can't be a new studio's address, in words; None when it can. A pending sign-up of another
    email holds its address until it expires; the same email may ask again."""
    try:
        slug_validator(slug)
    except ValidationError:
        return _("Use 1 to 50 lowercase letters, digits and hyphens, with no hyphen at either end.")
    if slug in reserved_slugs():
        return _("“%(slug)s” is reserved. Please choose another address.") % {"slug": slug}
    if Studio.objects.filter(slug=slug).exists() or RetiredSlug.objects.filter(slug=slug).exists():
        return _("“%(slug)s” is already taken. Please choose another address.") % {"slug": slug}
    pending = SignupRequest.objects.filter(slug=slug, confirmed_at__isnull=True, expires_at__gt=timezone.now())
    if exclude is not None:
        pending = pending.exclude(pk=exclude.pk)
    if email:
        pending = pending.exclude(email__iexact=email)
    if pending.exists():
        return _("“%(slug)s” is already taken. Please choose another address.") % {"slug": slug}
    return None


def request_signup(
    *,
    studio_name: str,
    slug: str,
    email: str,
    full_name: str,
    password: str,
    base_url: str,
    ip_address: str | None = None,
) -> SignupRequest:
    """Store the sign-up and email its link (on commit). The fields are the form's, already cleaned (the
    password validated); the address is checked again here. A second sign-up of the same email replaces the
    first (its link stops working)."""
    if not getattr(settings, "SIGNUP_ENABLED", True):
        raise SignupRefused(_("Sign-up is closed on this platform for now."), status=403, code="signup_closed")
    email = email.strip().lower()
    slug = slug.strip().lower()
    with platform_context(), transaction.atomic():
        problem = slug_problem(slug, email=email)
        if problem:
            raise SignupRefused(problem, code="slug_unavailable")
        SignupRequest.objects.filter(email__iexact=email, confirmed_at__isnull=True).delete()
        signup = SignupRequest.objects.create(
            studio_name=studio_name.strip(),
            slug=slug,
            email=email,
            full_name=full_name.strip(),
            password_hash=make_password(password),
            token=secrets.token_urlsafe(32),
            expires_at=timezone.now() + timedelta(seconds=max_age_seconds()),
            ip_address=ip_address or None,
        )
        existing = User.objects.filter(email__iexact=email).exists()
        message = _confirmation_message(signup, link=confirmation_link(signup, base_url=base_url), existing=existing)
        transaction.on_commit(lambda: message.send(fail_silently=False))
    log.info("signup_requested", signup_id=signup.pk, slug=slug, existing_account=existing)
    return signup


def confirmation_link(signup: SignupRequest, *, base_url: str) -> str:
    token = signing.dumps(signup.token, salt=SIGNUP_SALT)
    return f"{base_url.rstrip('/')}/signup/confirm/{token}/"


def _confirmation_message(signup: SignupRequest, *, link: str, existing: bool) -> EmailMessage:
    context = {"signup": signup, "link": link, "existing": existing, "hours": max_age_seconds() // 3600}
    subject = " ".join(render_to_string("tenants/email/signup_subject.txt", context).split())
    body = render_to_string("tenants/email/signup_confirm.txt", context)
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[signup.email])


def signup_from_link(signed: str) -> SignupRequest:
    """The pending sign-up a link names; refused when the link is tampered with, expired or already used."""
    try:
        token = signing.loads(signed, salt=SIGNUP_SALT, max_age=max_age_seconds())
    except signing.SignatureExpired:
        raise SignupRefused(
            _("This link has expired. Please sign up again: it only takes a minute."), status=410, code="link_expired"
        ) from None
    except signing.BadSignature:
        raise SignupRefused(_("This link is not valid. Please use the link from the email."), status=404) from None
    with platform_context():
        signup = SignupRequest.objects.filter(token=str(token)).first()
    if signup is None:
        raise SignupRefused(
            _("This link is no longer valid: a newer sign-up with the same email replaced it. Use the latest email."),
            status=410,
            code="link_replaced",
        )
    if signup.confirmed_at is not None:
        raise SignupRefused(
            _("This studio was already created. Sign in to reach it."), status=410, code="already_confirmed"
        )
    if not signup.is_pending:
        raise SignupRefused(
            _("This link has expired. Please sign up again: it only takes a minute."), status=410, code="link_expired"
        )
    return signup


def confirm_signup(*, signup: SignupRequest) -> tuple[Studio, User]:
    """Create the studio, its owner's account (or use the existing account of that email) and the membership,
    once; then `studio_signed_up`. Refused when the link was used meanwhile or the address was taken."""
    with platform_context(), transaction.atomic():
        signup = SignupRequest.objects.select_for_update().get(pk=signup.pk)
        if not signup.is_pending:
            raise SignupRefused(_("This sign-up was already used or has expired."), status=410, code="not_pending")
        problem = slug_problem(signup.slug, exclude=signup)
        if problem:
            raise SignupRefused(
                _("The address “%(slug)s” was taken meanwhile. Please sign up again with another one.")
                % {"slug": signup.slug},
                status=409,
                code="slug_taken",
            )
        user = User.objects.filter(email__iexact=signup.email).first()
        if user is None:
            user = User(email=signup.email, full_name=signup.full_name)
            user.password = signup.password_hash
            user.save()
        try:
            with transaction.atomic():
                studio = Studio.objects.create(name=signup.studio_name, slug=signup.slug, contact_email=signup.email)
        except IntegrityError:  # two confirmations of two sign-ups raced for one address
            raise SignupRefused(
                _("The address “%(slug)s” was taken meanwhile. Please sign up again with another one.")
                % {"slug": signup.slug},
                status=409,
                code="slug_taken",
            ) from None
        with tenant_context(studio):
            Membership.objects.create(user=user, role=Role.OWNER)
            studio_signed_up.send(sender=Studio, studio=studio, user=user)
        signup.confirmed_at = timezone.now()
        signup.created_studio = studio
        signup.password_hash = ""
        signup.save(update_fields=["confirmed_at", "created_studio", "password_hash"])
    log.info("studio_signed_up", studio_id=studio.pk, slug=studio.slug, signup_id=signup.pk)
    return studio, user


# --- Addresses are never reused (receivers connected in tenants.apps) ----------------------------------------


def retire_slug_on_delete(sender: Any, instance: Studio, **kwargs: Any) -> None:
    """post_delete of a Studio: its address is retired for good."""
    with platform_context():
        RetiredSlug.objects.get_or_create(slug=instance.slug, defaults={"studio_name": instance.name})


def retire_slug_on_rename(sender: Any, instance: Studio, **kwargs: Any) -> None:
    """pre_save of a Studio whose address changes: the old one is retired for good."""
    if instance.pk is None:
        return
    with platform_context():
        old = Studio.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()
        if old and old != instance.slug:
            RetiredSlug.objects.get_or_create(slug=old, defaults={"studio_name": instance.name})
