"""Reads about studios, people and invitations. Tenant-owned reads run in the current studio's context (the
manager fails closed without one); the only cross-studio read, a user's own studios, says so."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.context import platform_context
from tenants.models import Invitation, Membership, Role, Studio, User
from tenants.refusals import Refused

ROLE_ORDER = [Role.OWNER, Role.MANAGER, Role.PHOTOGRAPHER, Role.STAFF]


def invitation_signer(studio: Studio) -> TimestampSigner:
    """Signs invitation tokens; the studio is in the salt, so a link is only ever valid at its own studio."""
    return TimestampSigner(salt=f"tenants.invitation.studio-{studio.pk}")


def is_member(*, user: User) -> bool:
    """Whether the user belongs to the current studio."""
    return Membership.objects.filter(user_id=user.pk).exists()


def member_list() -> list[Membership]:
    """The studio's members with their users, owners first (one query)."""
    rank = Case(
        *(When(role=role, then=Value(i)) for i, role in enumerate(ROLE_ORDER)),
        default=Value(len(ROLE_ORDER)),
        output_field=IntegerField(),
    )
    return list(Membership.objects.select_related("user").annotate(role_rank=rank).order_by("role_rank", "user__email"))


def pending_invitations() -> list[Invitation]:
    """Invitations that can still be accepted, newest first, with who sent them (one query)."""
    return list(
        Invitation.objects.select_related("invited_by")
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at", "-pk")
    )


def member_counts() -> dict[str, int]:
    """How many members and pending invitations the studio has (one query each)."""
    return {
        "members": Membership.objects.count(),
        "pending_invitations": Invitation.objects.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).count(),
    }


@dataclass(frozen=True)
class StudioChoice:
    studio: Studio
    role: str

    @property
    def role_label(self) -> str:
        return Role(self.role).label


def studios_for_user(*, user: User) -> list[StudioChoice]:
    """Every active studio the user is a member of, by name. Cross-studio by nature: a platform read of the
    user's own memberships only."""
    if not user.is_authenticated:
        return []
    with platform_context():
        memberships = (
            Membership.objects.filter(user_id=user.pk, studio__status=Studio.Status.ACTIVE)
            .select_related("studio")
            .order_by("studio__name", "studio__slug")
        )
        return [StudioChoice(studio=m.studio, role=m.role) for m in memberships]


# --- Invitation links -----------------------------------------------------------------------------------------


class InvitationLinkError(Refused):
    """An invitation link that can't be used, with a message for people and the HTTP status to answer."""

    def __init__(self, *, reason: str, title: str, message: str, status: int) -> None:
        super().__init__(message, status, reason)
        self.reason = reason
        self.title = title


def invitation_for_link(*, studio: Studio, signed_token: str, max_age: int) -> Invitation:
    """The current studio's pending invitation named by a signed link; raises InvitationLinkError for a
    tampered, expired, unknown, revoked or already used link."""
    try:
        token = invitation_signer(studio).unsign(signed_token, max_age=max_age)
    except SignatureExpired:
        raise InvitationLinkError(
            reason="expired",
            title=_("This invitation has expired"),
            message=_("Invitation links are valid for a limited time. Ask the studio to send you a new one."),
            status=410,
        ) from None
    except BadSignature:
        raise InvitationLinkError(
            reason="invalid",
            title=_("This invitation link is not valid"),
            message=_(
                "The link is incomplete or was changed. Open it again from the email, or ask the studio "
                "to send you a new invitation."
            ),
            status=400,
        ) from None
    invitation = Invitation.objects.select_related("invited_by").filter(token=token).first()
    if invitation is None:
        raise InvitationLinkError(
            reason="unknown",
            title=_("This invitation link is not valid"),
            message=_("No invitation matches this link. Ask the studio to send you a new one."),
            status=404,
        )
    if invitation.revoked_at is not None:
        raise InvitationLinkError(
            reason="revoked",
            title=_("This invitation was withdrawn"),
            message=_("The studio revoked this invitation. Ask them to send you a new one if this is a mistake."),
            status=410,
        )
    if invitation.accepted_at is not None:
        raise InvitationLinkError(
            reason="used",
            title=_("This invitation was already used"),
            message=_("It has been accepted already. Sign in with the account that accepted it."),
            status=410,
        )
    if invitation.expires_at <= timezone.now():
        raise InvitationLinkError(
            reason="expired",
            title=_("This invitation has expired"),
            message=_("Invitation links are valid for a limited time. Ask the studio to send you a new one."),
            status=410,
        )
    return invitation
