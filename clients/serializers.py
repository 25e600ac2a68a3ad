"""Serializers of the intake API (clients/api.py). Output shapes and input checks only: the writes happen in
clients.services. Nothing here shows an upload link's token except the `url` built for the staff who made it,
nor a photo's storage path: files are reached through signed, expiring media links (tenants/media.py)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clients.models import Client, ConsentText, DeletionReceipt, Photo, PhotoSet, UploadLink
from tenants.media import signed_media_url


class ConsentRecordSerializer(serializers.Serializer):
    """The consent on record for a client (null when none)."""

    given_at = serializers.DateTimeField(source="consent_given_at")
    method = serializers.CharField(source="consent_method", help_text="staff or self")
    text_version = serializers.IntegerField(source="consent_text.version")
    text_id = serializers.IntegerField(source="consent_text_id")
    ip = serializers.IPAddressField(source="consent_ip", allow_null=True)
    collected_by = serializers.EmailField(source="consent_collected_by.email", default=None, allow_null=True)


class ClientSerializer(serializers.ModelSerializer):
    consent = serializers.SerializerMethodField()
    photo_set_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Client
        fields = ["id", "name", "email", "phone", "notes", "status", "created_at", "photo_set_count", "consent"]
        read_only_fields = ["id", "created_at", "photo_set_count", "consent"]

    @extend_schema_field(ConsentRecordSerializer(allow_null=True))
    def get_consent(self, client: Client) -> dict[str, Any] | None:
        return ConsentRecordSerializer(client).data if client.has_consent else None

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("Enter the client's name.")
        return value


class ClientCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ConsentRequestSerializer(serializers.Serializer):
    consent_text_id = serializers.IntegerField(
        required=False,
        help_text="The version the client agreed to (its id). Optional: the current text when left out; an older "
        "version is refused (409) so that consent is always to the text in force.",
    )


class ConsentTextSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = ConsentText
        fields = ["id", "version", "body", "is_current", "created_at", "created_by"]
        read_only_fields = ["id", "version", "is_current", "created_at", "created_by"]

    def get_is_current(self, text: ConsentText) -> bool:
        current = self.context.get("current_version")
        return current is not None and text.version == current


class ConsentTextCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20_000, help_text="The new text; it becomes the next version.")


class ReadinessSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pending = serializers.IntegerField()
    minimum = serializers.IntegerField()
    recommended = serializers.IntegerField()
    percent = serializers.IntegerField(help_text="0-100; 100 = the recommended number of accepted photos")
    level = serializers.ChoiceField(choices=["not_enough", "enough", "recommended"])
    can_train = serializers.BooleanField()
    hints = serializers.ListField(child=serializers.CharField())


class PhotoSetSerializer(serializers.ModelSerializer):
    client_id = serializers.IntegerField(read_only=True)
    validation_job_id = serializers.IntegerField(read_only=True, allow_null=True)
    photo_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    accepted_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = PhotoSet
        fields = [
            "id",
            "client_id",
            "status",
            "created_at",
            "retention_until",
            "purged_at",
            "validation_job_id",
            "photo_count",
            "accepted_count",
        ]
        read_only_fields = fields


class PhotoSetDetailSerializer(PhotoSetSerializer):
    readiness = serializers.SerializerMethodField()

    class Meta(PhotoSetSerializer.Meta):
        fields = [*PhotoSetSerializer.Meta.fields, "readiness"]
        read_only_fields = fields

    @extend_schema_field(ReadinessSerializer)
    def get_readiness(self, photo_set: PhotoSet) -> dict[str, Any]:
        from clients.selectors import readiness

        return ReadinessSerializer(readiness(photo_set=photo_set)).data


class PhotoSerializer(serializers.ModelSerializer):
    thumbnail = serializers.SerializerMethodField(
        help_text="A signed link to the thumbnail, valid for MEDIA_LINK_MAX_AGE_SECONDS; send the same "
        "Authorization header with an API key. Null until the photo has one."
    )

    class Meta:
        model = Photo
        fields = [
            "id",
            "status",
            "reason_code",
            "reason",
            "source",
            "original_name",
            "detected_format",
            "width",
            "height",
            "size_bytes",
            "uploaded_at",
            "validated_at",
            "files_deleted_at",
            "thumbnail",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail(self, photo: Photo) -> str | None:
        if not photo.thumbnail:
            return None
        request = self.context.get("request")
        path = signed_media_url(obj=photo, field="thumbnail", request=request)
        return request.build_absolute_uri(path) if request is not None else path


class PhotoUploadSerializer(serializers.Serializer):
    """The multipart body of an upload (documentation only: the view reads request.FILES itself, after the
    size-limiting upload handler is installed)."""

    files = serializers.ListField(
        child=serializers.FileField(),
        help_text="One or several photos (JPEG, PNG, WebP, HEIC/HEIF), repeated under the field name `files`.",
    )


class UploadLinkSerializer(serializers.ModelSerializer):
    photo_set_id = serializers.IntegerField(read_only=True)
    is_usable = serializers.BooleanField(read_only=True)
    url = serializers.SerializerMethodField(help_text="The link to send to the client (it is the credential).")

    class Meta:
        model = UploadLink
        fields = [
            "id",
            "photo_set_id",
            "url",
            "is_usable",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "uploads",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, link: UploadLink) -> str:
        path = reverse("self_upload", kwargs={"link_token": link.token})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class UploadLinkSendSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, help_text="Where to send it; default: the client's email.")


class UploadLinkSentSerializer(serializers.Serializer):
    sent_to = serializers.EmailField()


class UploadLinkCreateSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False, min_value=1, max_value=90, help_text="How long the link works (default 7 days)."
    )


class DeletionReceiptSerializer(serializers.ModelSerializer):
    performed_by = serializers.EmailField(source="performed_by.email", read_only=True, default=None)

    class Meta:
        model = DeletionReceipt
        fields = ["id", "kind", "client_ref", "photo_set_ref", "performed_by", "performed_at", "counts"]
        read_only_fields = fields
