"""Factories of clients' tenant-owned models (consent texts, clients, their search trigrams, photo sets, photos,
upload links, deletion receipts), registered in tests/factories.FACTORIES (which imports this module)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from tests.registry import factory, unique


@factory("clients.ConsentText")
def make_consent_text(tenant: Any) -> models.Model:
    from clients.models import ConsentText

    latest = ConsentText.objects.order_by("-version").first()
    return ConsentText.objects.create(version=(latest.version + 1) if latest else 1, body="I agree.")


@factory("clients.Client")
def make_client(tenant: Any) -> models.Model:
    from clients.models import Client

    return Client.objects.create(name=unique("Client"), email=f"{unique('c')}@example.com")


@factory("clients.ClientSearchTerm")
def make_client_search_term(tenant: Any) -> models.Model:
    from clients.models import ClientSearchTerm

    client = make_client(tenant)  # on PostgreSQL its trigrams are written by the database's trigger
    return ClientSearchTerm.objects.filter(client=client).first() or ClientSearchTerm.objects.create(
        client=client, term=client.name[:3].lower()
    )


@factory("clients.PhotoSet")
def make_photo_set(tenant: Any) -> models.Model:
    from clients.models import PhotoSet

    return PhotoSet.objects.create(client=make_client(tenant), retention_until=timezone.now() + timedelta(days=7))


@factory("clients.Photo")
def make_photo(tenant: Any) -> models.Model:
    from clients.models import Photo

    return Photo.objects.create(photo_set=make_photo_set(tenant), original_name="photo.jpg")


@factory("clients.UploadLink")
def make_upload_link(tenant: Any) -> models.Model:
    from clients.models import UploadLink

    return UploadLink.objects.create(photo_set=make_photo_set(tenant), expires_at=timezone.now() + timedelta(days=7))


@factory("clients.DeletionReceipt")
def make_deletion_receipt(tenant: Any) -> models.Model:
    from clients.models import DeletionReceipt

    return DeletionReceipt.objects.create(kind=DeletionReceipt.Kind.RETENTION, counts={"photos": 1})


@factory("clients.ClientGroup")
def make_client_group(tenant: Any) -> models.Model:
    from clients.models import ClientGroup, GroupMember

    group = ClientGroup.objects.create(name=unique("Group"))
    for position in (1, 2):
        GroupMember.objects.create(group=group, client=make_client(tenant), position=position)
    return group


@factory("clients.GroupMember")
def make_group_member(tenant: Any) -> models.Model:
    from clients.models import GroupMember

    group = make_client_group(tenant)
    return GroupMember.objects.filter(group=group).order_by("position").first()


@factory("clients.ClientMessage")
def make_client_message(tenant: Any) -> models.Model:
    from clients.models import ClientMessage

    client = make_client(tenant)
    return ClientMessage.objects.create(
        client=client,
        kind=ClientMessage.Kind.ORDER_RECEIPT,
        event_key=unique("order_receipt"),
        to_email=client.email,
        language="en",
        subject="Your receipt",
        body_text="Thank you.",
    )
