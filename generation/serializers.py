"""API representation of render runs, their items and portraits (read), and the body that starts a run."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation import portraits, runs
from generation.models import InstantPortrait, Portrait, RenderRun, RenderRunItem
from jobs.serializers import JobSerializer
from tenants.media import signed_media_url


class SignedLinksMixin:
    """`thumbnail` and `preview` as signed media links (absolute when there is a request) of a portrait-like row."""

    context: dict[str, Any]

    def _link(self, portrait: Any, field: str) -> str | None:
        if not getattr(portrait, field):
            return None
        request = self.context.get("request")
        path = signed_media_url(obj=portrait, field=field, request=request)
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail(self, portrait: Any) -> str | None:
        return self._link(portrait, "thumbnail")

    @extend_schema_field(OpenApiTypes.URI)
    def get_preview(self, portrait: Any) -> str | None:
        return self._link(portrait, "preview")


class RunSubjectOutSerializer(serializers.Serializer):
    slot = serializers.IntegerField(help_text="Fills {subject_<slot>}.")
    double = serializers.IntegerField()
    client = serializers.DictField(help_text="{id, name}.")


class PortraitFaceSerializer(serializers.Serializer):
    slot = serializers.IntegerField()
    double = serializers.IntegerField()
    client = serializers.IntegerField()
    face = serializers.ListField(child=serializers.IntegerField(), help_text="[x0, y0, x1, y1], output pixels.")
    likeness = serializers.FloatField(allow_null=True, help_text="0-100 against this person's centroid.")


class RunItemSerializer(serializers.ModelSerializer):
    template = serializers.SerializerMethodField(help_text="{id, name} of the template.")
    template_version = serializers.SerializerMethodField(help_text="{id, number} of the version rendered.")
    base_model = serializers.CharField(source="template_version.base_model", read_only=True)
    job = JobSerializer(read_only=True, help_text="The item's gpu job: state, progress, error.")

    class Meta:
        model = RenderRunItem
        fields = ["id", "position", "template", "template_version", "base_model", "images", "gpu_seconds", "job"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_template(self, item: RenderRunItem) -> dict[str, Any]:
        template = item.template_version.template
        return {"id": template.pk, "name": template.name}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_template_version(self, item: RenderRunItem) -> dict[str, Any]:
        return {"id": item.template_version_id, "number": item.template_version.number}


class RunSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="queued, running, done, partly_failed or failed.")
    client = serializers.SerializerMethodField(help_text="{id, name} of the double's client.")
    created_by = serializers.SerializerMethodField()
    items = RunItemSerializer(many=True, read_only=True)

    class Meta:
        model = RenderRun
        fields = [
            "id",
            "kind",
            "status",
            "double",
            "client",
            "images",
            "gpu_seconds",
            "created_by",
            "created_at",
            "items",
            "group",
            "subjects",
        ]
        read_only_fields = fields

    subjects = serializers.SerializerMethodField(
        help_text="A group run's people: [{slot, double, client: {id, name}}] in slot order; empty for one person."
    )

    @extend_schema_field(RunSubjectOutSerializer(many=True))
    def get_subjects(self, run: RenderRun) -> list[dict[str, Any]]:
        if run.group_id is None:
            return []
        return [
            {"slot": s.slot, "double": s.double_id, "client": {"id": s.double.client_id, "name": s.double.client.name}}
            for s in run.subjects.select_related("double__client").order_by("slot")
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_client(self, run: RenderRun) -> dict[str, Any]:
        client = run.double.client
        return {"id": client.pk, "name": client.name}

    def get_created_by(self, run: RenderRun) -> str | None:
        return run.created_by.email if run.created_by_id and run.created_by else None


class RunItemRequestSerializer(serializers.Serializer):
    template = serializers.IntegerField(min_value=1, help_text="A published template of the studio.")
    count = serializers.IntegerField(
        min_value=1, max_value=runs.MAX_IMAGES_PER_TEMPLATE, help_text="How many images of it (1-32)."
    )


class RunCreateSerializer(serializers.Serializer):
    double = serializers.IntegerField(
        min_value=1, required=False, help_text="A READY digital double of the studio (a run for one person)."
    )
    group = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="A group of clients (a group run of group templates: each member's newest ready double).",
    )
    items = RunItemRequestSerializer(many=True, help_text="One entry per template.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("double" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("Give either `double` (one person) or `group` (a group run).")
        return attrs


class PortraitSerializer(SignedLinksMixin, serializers.ModelSerializer):
    seed = serializers.IntegerField(read_only=True, allow_null=True)
    identity_weight = serializers.FloatField(read_only=True, allow_null=True)
    size = serializers.ListField(
        source="output_size",
        child=serializers.IntegerField(),
        read_only=True,
        allow_null=True,
        help_text="[width, height] of the full-resolution file: the template's print size when it asks for one.",
    )
    faces = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        read_only=True,
        help_text="Boxes [x0, y0, x1, y1] in full-resolution pixels of the faces the face pass or the template "
        "photo regenerated. The recipe's `stages` name every stage with its settings.",
    )
    template_version = serializers.SerializerMethodField(help_text="{id, number, template_id, name} or null.")
    can_more_like_me = serializers.SerializerMethodField(help_text="False at the identity weight's cap.")
    thumbnail = serializers.SerializerMethodField(
        help_text="A signed link to the 512 px thumbnail, valid for MEDIA_LINK_MAX_AGE_SECONDS (send the same "
        "Authorization header with an API key). Null when the portrait has none."
    )
    preview = serializers.SerializerMethodField(help_text="A signed link to the watermarked 1024 px preview.")

    class Meta:
        model = Portrait
        fields = [
            "id",
            "double",
            "run",
            "item",
            "template_version",
            "seed",
            "identity_weight",
            "size",
            "faces",
            "likeness",
            "flags",
            "rank",
            "is_pick",
            "is_hidden",
            "is_demo",
            "parent",
            "recipe",
            "can_more_like_me",
            "thumbnail",
            "preview",
            "created_at",
            "group",
            "subjects",
        ]
        read_only_fields = fields

    subjects = serializers.SerializerMethodField(
        help_text="A group portrait's faces: [{slot, double, client, face: [x0, y0, x1, y1], likeness}]; the "
        "portrait's `likeness` is its weakest face's. Empty for one person."
    )

    @extend_schema_field(PortraitFaceSerializer(many=True))
    def get_subjects(self, portrait: Portrait) -> list[dict[str, Any]]:
        if portrait.group_id is None:
            return []
        return [
            {
                "slot": s.slot,
                "double": s.double_id,
                "client": s.double.client_id,
                "face": s.face,
                "likeness": s.likeness,
            }
            for s in portrait.subjects.select_related("double").order_by("slot")
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_template_version(self, portrait: Portrait) -> dict[str, Any] | None:
        if portrait.template_version_id is None:
            return None
        return (portrait.recipe or {}).get("template_version") or {"id": portrait.template_version_id}

    def get_can_more_like_me(self, portrait: Portrait) -> bool:
        return portraits.can_go_more_like_me(portrait)


class InstantPortraitSerializer(SignedLinksMixin, serializers.ModelSerializer):
    """An instant portrait (generation/instant.py): likeness against the set's accepted photos, flags, rank within
    its job, a summary of its recipe and signed links to its thumbnail and watermarked preview."""

    seed = serializers.IntegerField(read_only=True, allow_null=True)
    is_demo = serializers.BooleanField(read_only=True, help_text="Rendered by the tiny demo model (noise).")
    recipe = serializers.SerializerMethodField(
        help_text="{instant, base_model, adapter, scale, prompt, steps, seed}: how it was made (no path, no photo)."
    )
    thumbnail = serializers.SerializerMethodField(
        help_text="A signed link to the 512 px thumbnail, valid for MEDIA_LINK_MAX_AGE_SECONDS (send the same "
        "Authorization header with an API key). Null when it has none."
    )
    preview = serializers.SerializerMethodField(help_text="A signed link to the watermarked 1024 px preview.")

    class Meta:
        model = InstantPortrait
        fields = [
            "id",
            "photo_set",
            "job",
            "seed",
            "likeness",
            "flags",
            "rank",
            "is_demo",
            "recipe",
            "thumbnail",
            "preview",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_recipe(self, portrait: InstantPortrait) -> dict[str, Any]:
        recipe = portrait.recipe or {}
        identity = recipe.get("identity_image") or {}
        return {
            "instant": bool(recipe.get("instant")),
            "base_model": (recipe.get("base_model") or {}).get("name"),
            "adapter": identity.get("adapter"),
            "scale": identity.get("scale"),
            "prompt": recipe.get("prompt"),
            "steps": recipe.get("steps"),
            "seed": recipe.get("seed"),
        }


class InstantCreateSerializer(serializers.Serializer):
    images = serializers.IntegerField(
        min_value=1, max_value=8, default=4, help_text="How many instant portraits (1-8, one seed each)."
    )
