"""Writes about studios, people and invitations (HackSoft style: keyword-only, typed, one action each).

Every action runs in one transaction, in the studio's tenant context, and defers its side effects (email) to
`transaction.on_commit`. A business rule that refuses an action raises `ActionRefused` with a message for
people and the HTTP status a view should answer with."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tenants import emails
from tenants.context import CrossTenantWrite, current_studio_id, in_platform_context, tenant_context
from tenants.models import MANAGING_ROLES, Invitation, Membership, Role, Studio, User
from tenants.refusals import Refused
from tenants.selectors import invitation_signer


class ActionRefused(Refused):
    """A business rule of the studio's members refused the action (`code` names the rule)."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message, status, code)


@contextmanager
def _in_studio(studio: Studio) -> Iterator[Studio]:
    """The studio's tenant context for an action: entered when none is set; refused when another is."""
    current = current_studio_id()
    if current is not None and current != studio.pk and not in_platform_context():
        raise CrossTenantWrite(f"An action for studio {studio.pk} was called while studio {current} is current")
    with tenant_context(studio):
        yield studio


def _acting_membership(user: User | None) -> Membership | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user_id=user.pk).first()


def _require_manager(user: User | None, *, what: str) -> Membership:
    membership = _acting_membership(user)
    if membership is None or membership.role not in MANAGING_ROLES:
        raise ActionRefused(
            _("Only the studio's owners and managers can %(what)s.") % {"what": what}, code="forbidden", status=403
        )
    return membership


def _normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ActionRefused(
            _("“%(email)s” is not a valid email address.") % {"email": email}, code="invalid_email"
        ) from None
    return email


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise ActionRefused(_("“%(role)s” is not a role of this studio.") % {"role": role}, code="invalid_role")
    return role


# --- Invitations ----------------------------------------------------------------------------------------------


def invite_member(
    *, studio: Studio, email: str, role: str, invited_by: User, base_url: str | None = None
) -> Invitation:
    """Invite someone by email with a role. Owners and managers only; only an owner may invite an owner.
    Refuses an existing member and a second pending invitation for the same address. The email with the
    signed link (valid INVITATION_MAX_AGE_SECONDS) goes out when the transaction commits.

    `base_url` is the studio's absolute root URL as the inviting request saw it (e.g.
    "https://studios.example/s/acme/"); without it the link is built from settings.PLATFORM_BASE_URL."""
    email = _normalize_email(email)
    role = _check_role(role)
    with _in_studio(studio), transaction.atomic():
        inviter = _require_manager(invited_by, what=gettext_lazy("invite people"))
        if role == Role.OWNER and inviter.role != Role.OWNER:
            raise ActionRefused(_("Only an owner can invite someone as an owner."), code="owner_only", status=403)
        # Serialize invitations per studio so that two simultaneous invites can't both pass the checks below.
        Studio.objects.select_for_update().filter(pk=studio.pk).first()
        if Membership.objects.filter(user__email__iexact=email).exists():
            raise ActionRefused(
                _("%(email)s is already a member of %(studio)s.") % {"email": email, "studio": studio.name},
                code="already_member",
            )
        now = timezone.now()
        pending = Invitation.objects.filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        if pending.exists():
            raise ActionRefused(
                _("%(email)s already has a pending invitation. Revoke it first to send a new one.") % {"email": email},
                code="already_invited",
            )
        invitation = Invitation.objects.create(
            studio=studio,
            email=email,
            role=role,
            token=secrets.token_urlsafe(32),
            invited_by=invited_by,
            expires_at=now + timedelta(seconds=settings.INVITATION_MAX_AGE_SECONDS),
        )
        signed = invitation_signer(studio).sign(invitation.token)
        link = emails.invitation_link(studio=studio, signed_token=signed, base_url=base_url)
        message = emails.invitation_message(invitation=invitation, studio=studio, link=link, inviter=invited_by)
        transaction.on_commit(message.send)
    return invitation


def revoke_invitation(*, invitation: Invitation, revoked_by: User) -> Invitation:
    """Revoke a pending invitation: its link stops working at once."""
    with transaction.atomic():
        _require_manager(revoked_by, what=gettext_lazy("revoke invitations"))
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise ActionRefused(
                _("The invitation for %(email)s was already accepted.") % {"email": invitation.email}, code="accepted"
            )
        if invitation.revoked_at is not None:
            raise ActionRefused(
                _("The invitation for %(email)s was already revoked.") % {"email": invitation.email}, code="revoked"
            )
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def accept_invitation(*, invitation: Invitation, user: User) -> Membership:
    """The invited person (signed in with the invited address) joins the studio with the invited role.
    A person who is already a member keeps their membership and role."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_pending:
            raise ActionRefused(_("This invitation can no longer be used."), code="not_pending", status=410)
        if user.email.lower() != invitation.email.lower():
            raise ActionRefused(
                _("This invitation was sent to %(invited)s, not to %(email)s.")
                % {"invited": invitation.email, "email": user.email},
                code="wrong_account",
                status=403,
            )
        membership = Membership.objects.filter(user_id=user.pk).first()
        if membership is None:
            membership = Membership.objects.create(user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def register_from_invitation(*, invitation: Invitation, full_name: str, password: str) -> User:
    """A new person accepts an invitation: their account (the invited email, a validated password) and their
    membership are created together."""
    with transaction.atomic():
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise ActionRefused(
                _("An account for %(email)s already exists: sign in to accept the invitation.")
                % {"email": invitation.email},
                code="account_exists",
                status=409,
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(invitation.email, password, full_name=full_name.strip())
        except IntegrityError:
            raise ActionRefused(
                _("An account for %(email)s already exists: sign in to accept the invitation.")
                % {"email": invitation.email},
                code="account_exists",
                status=409,
            ) from None
        accept_invitation(invitation=invitation, user=user)
    return user


# --- Memberships ----------------------------------------------------------------------------------------------


def _owner_ids_locked() -> list[int]:
    return list(Membership.objects.select_for_update().filter(role=Role.OWNER).values_list("pk", flat=True))


def change_member_role(*, membership: Membership, role: str, changed_by: User) -> Membership:
    """Give a member another role. Only an owner can make someone an owner or change an owner's role; the last
    owner can't be demoted."""
    role = _check_role(role)
    with transaction.atomic():
        actor = _require_manager(changed_by, what=gettext_lazy("change roles"))
        membership = Membership.objects.select_related("user").select_for_update(of=("self",)).get(pk=membership.pk)
        if membership.role == role:
            return membership
        if (role == Role.OWNER or membership.role == Role.OWNER) and actor.role != Role.OWNER:
            raise ActionRefused(
                _("Only an owner can make someone an owner or change an owner's role."), code="owner_only", status=403
            )
        if membership.role == Role.OWNER and _owner_ids_locked() == [membership.pk]:
            raise ActionRefused(
                _("%(email)s is the studio's last owner: make someone else an owner first.")
                % {"email": membership.user.email},
                code="last_owner",
            )
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def remove_member(*, membership: Membership, removed_by: User) -> None:
    """Take someone out of the studio (their account stays). Only an owner can remove an owner; the last owner
    can't be removed."""
    with transaction.atomic():
        actor = _require_manager(removed_by, what=gettext_lazy("remove members"))
        membership = Membership.objects.select_related("user").select_for_update(of=("self",)).get(pk=membership.pk)
        if membership.role == Role.OWNER:
            if actor.role != Role.OWNER:
                raise ActionRefused(_("Only an owner can remove an owner."), code="owner_only", status=403)
            if _owner_ids_locked() == [membership.pk]:
                raise ActionRefused(
                    _("%(email)s is the studio's last owner and can't be removed.") % {"email": membership.user.email},
                    code="last_owner",
                )
        membership.delete()


def hide_onboarding(*, studio: Studio, user: User | None) -> None:
    """Hide the dashboard's getting-started checklist (owners and managers; it stays hidden)."""
    with _in_studio(studio), transaction.atomic():
        _require_manager(user, what=gettext_lazy("hide the checklist"))
        Studio.objects.filter(pk=studio.pk, onboarding_hidden_at__isnull=True).update(
            onboarding_hidden_at=timezone.now()
        )
