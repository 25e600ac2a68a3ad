"""Groups of clients (couples, families, friends) portrayed together: the writes and reads of clients.ClientGroup.

A group is 2 to MAX_MEMBERS of the studio's active clients, each with their consent on record (each person's
photos are theirs, and so is their double: a group never shares one). The members' order is the default order of
a group template's slots. What a group is rendered with (each member's ready double, group templates, group runs)
is generation's (generation/groups.py); what its gallery shows is galleries'.

Keyword-only, in the current tenant context; refusals for people raise clients.services.IntakeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clients.models import Client, ClientGroup, GroupMember
from clients.services import IntakeError
from tenants.access import acting_user
from tenants.api_fields import MAX_ID
from tenants.models import User

log = structlog.get_logger("clients.groups")

MIN_MEMBERS = 2
#: The most people a group template can portray (engine.group.MAX_SUBJECTS).
MAX_MEMBERS = 6


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise IntakeError(_("Name the group (for example “The Martins”)."))
    if len(name) > ClientGroup._meta.get_field("name").max_length:
        raise IntakeError(_("The group's name is too long (150 characters at most)."))
    return name


def _clean_members(clients: Sequence[Any]) -> list[Client]:
    """The members in order: 2 to MAX_MEMBERS distinct clients of this studio, active, with consent on record.
    `clients` are Client rows or ids (ids of another studio's clients are "not found", like any unknown id)."""
    ids: list[int] = []
    for value in clients:
        try:
            pk = int(value.pk if isinstance(value, Client) else value)
        except (TypeError, ValueError):
            raise IntakeError(_("Choose the group's members from the studio's clients.")) from None
        if not 1 <= pk <= MAX_ID:  # no row has such an id (and the database can't even compare it)
            raise IntakeError(_("One of the chosen clients doesn't exist (any more)."), status=400)
        if pk in ids:
            raise IntakeError(_("A client can be in a group only once."))
        ids.append(pk)
    if not MIN_MEMBERS <= len(ids) <= MAX_MEMBERS:
        raise IntakeError(
            _("A group has %(min)s to %(max)s people: choose %(min)s or more clients.")
            % {"min": MIN_MEMBERS, "max": MAX_MEMBERS}
        )
    found = Client.objects.in_bulk(ids)
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise IntakeError(_("One of the chosen clients doesn't exist (any more)."), status=400)
    members = [found[pk] for pk in ids]
    archived = [client.name for client in members if client.status != Client.Status.ACTIVE]
    if archived:
        raise IntakeError(_("%(names)s: archived clients can't join a group.") % {"names": ", ".join(archived)})
    without = [client.name for client in members if not client.has_consent]
    if without:
        raise IntakeError(
            ngettext(
                "%(names)s has no consent on record: each person of a group gives their own consent before their "
                "photos are used.",
                "%(names)s have no consent on record: each person of a group gives their own consent before their "
                "photos are used.",
                len(without),
            )
            % {"names": ", ".join(without)}
        )
    return members


def _write_members(group: ClientGroup, members: Sequence[Client]) -> None:
    GroupMember.objects.filter(group=group).delete()
    GroupMember.objects.bulk_create(
        [GroupMember(group=group, client=client, position=index) for index, client in enumerate(members, start=1)]
    )


def create_group(*, name: str, clients: Sequence[Any], notes: str = "", created_by: User | None = None) -> ClientGroup:
    """A group of 2-6 of the studio's clients, in the order given (slot 1 first). IntakeError (400) otherwise."""
    name = _clean_name(name)
    members = _clean_members(clients)
    with transaction.atomic():
        group = ClientGroup.objects.create(name=name, notes=notes or "", created_by=acting_user(created_by))
        _write_members(group, members)
    log.info("group_created", group_id=group.pk, members=len(members))
    return group


def update_group(
    *, group: ClientGroup, name: str | None = None, clients: Sequence[Any] | None = None, notes: str | None = None
) -> ClientGroup:
    """Rename the group, change its notes, or set its members (in order). Portraits already made keep the people
    they show; new runs use the new members."""
    with transaction.atomic():
        locked = ClientGroup.objects.select_for_update().get(pk=group.pk)
        fields = []
        if name is not None:
            locked.name = _clean_name(name)
            fields.append("name")
        if notes is not None:
            locked.notes = notes
            fields.append("notes")
        if fields:
            locked.save(update_fields=fields)
        if clients is not None:
            _write_members(locked, _clean_members(clients))
    log.info("group_updated", group_id=locked.pk)
    return locked


def delete_group(*, group: ClientGroup) -> None:
    """Delete the group and its galleries. Its portraits stay in their runs (each shows people who consented); the
    clients are untouched."""
    group_ref = group.pk
    group.delete()
    log.info("group_deleted", group_id=group_ref)


# --- Reads ---------------------------------------------------------------------------------------------------


def group_list() -> QuerySet[ClientGroup]:
    """The studio's groups by name, with their members (two queries)."""
    members = GroupMember.objects.select_related("client").order_by("position", "id")
    return (
        ClientGroup.objects.annotate(member_count=Count("members"))
        .prefetch_related(Prefetch("members", queryset=members))
        .order_by("name", "id")
    )


def members_of(group: ClientGroup) -> list[Client]:
    """The group's clients in slot order."""
    return [member.client for member in GroupMember.objects.filter(group=group).select_related("client")]


def members_queryset(group: ClientGroup) -> QuerySet[Client]:
    """The group's clients as a queryset (an archived member stays choosable on the group's own form)."""
    return Client.objects.filter(group_memberships__group=group)


def groups_of(client: Client) -> QuerySet[ClientGroup]:
    return ClientGroup.objects.filter(members__client=client).order_by("name", "id").distinct()


def group_candidates() -> QuerySet[Client]:
    """The clients who can join a group: active, with consent on record."""
    return Client.objects.filter(status=Client.Status.ACTIVE, consent_given_at__isnull=False).exclude(consent_text=None)
