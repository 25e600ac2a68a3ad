"""API representation of render runs, their items and portraits (read), the body that starts a run, and digital
doubles (read, the bodies that train one and start a test render)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engine.likeness_summary import summarise_likeness
from generation import doubles, portraits, runs
from generation.doubles import SCHEDULERS
from generation.models import DigitalDouble, InstantPortrait, Portrait, RenderRun, RenderRunItem
from jobs.serializers import JobSerializer
from templates_app import base_models
from tenants.api_fields import IdField
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


# --- Digital doubles (generation/api.py, DoubleViewSet) ---------------------------------------------------------


class BaseModelInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    licence = serializers.CharField(allow_blank=True)
    commercial_use = serializers.BooleanField()


class LikenessSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Portraits counted.")
    scored = serializers.IntegerField(help_text="Portraits with a likeness (a face found).")
    median = serializers.FloatField(allow_null=True, help_text="Median likeness (0-100) of the scored ones.")
    mean = serializers.FloatField(allow_null=True)
    above_line = serializers.IntegerField(help_text="Scored portraits at or above `line`: they look like the client.")
    share_above_line = serializers.FloatField(allow_null=True, help_text="above_line / scored (0-1).")
    line = serializers.FloatField(help_text="The face model's same-person line on the 0-100 scale.")


class DoubleRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="client or preview.")
    status = serializers.CharField(help_text="queued, running, done, partly_failed or failed.")
    created_at = serializers.DateTimeField()


class DoubleSerializer(serializers.ModelSerializer):
    """A digital double as the client page's list of doubles shows it: status (the training job's when it is
    not ready), the training job, the photo set, the base model and its licence."""

    client = serializers.SerializerMethodField(help_text="{id, name} of the client.")
    status = serializers.CharField(read_only=True, help_text="Stored status: queued, training, ready or failed.")
    state = serializers.SerializerMethodField(
        help_text="What the pages show (the training job's state while the double is not ready): queued, running, "
        "succeeded, cancelled or failed."
    )
    status_label = serializers.CharField(read_only=True, help_text="The status in words, as the pages show it.")
    base_model_info = serializers.SerializerMethodField(
        help_text="{name, display_name, licence, commercial_use} of the base model; null when it is no longer "
        "in the platform's registry."
    )
    trigger_phrase = serializers.CharField(read_only=True, help_text="What {subject} stands for in prompts.")
    job = JobSerializer(read_only=True, allow_null=True, help_text="The training job: state, progress, error.")
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = DigitalDouble
        fields = [
            "id",
            "client",
            "photo_set",
            "status",
            "state",
            "status_label",
            "base_model",
            "base_model_info",
            "family",
            "is_demo",
            "class_word",
            "trigger_phrase",
            "is_test_subject",
            "job",
            "created_by",
            "created_at",
            "trained_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_client(self, double: DigitalDouble) -> dict[str, Any]:
        return {"id": double.client_id, "name": double.client.name}

    def get_state(self, double: DigitalDouble) -> str:
        return double.badge_state

    @extend_schema_field(BaseModelInfoSerializer(allow_null=True))
    def get_base_model_info(self, double: DigitalDouble) -> dict[str, Any] | None:
        try:
            spec = base_models.get_model(double.base_model, enabled_only=False)
        except Exception:  # noqa: BLE001 (an unknown name or a broken registry: no details, like the page)
            return None
        return {
            "name": spec.name,
            "display_name": spec.display_name,
            "licence": spec.licence or "",
            "commercial_use": bool(spec.commercial_use),
        }

    def get_created_by(self, double: DigitalDouble) -> str | None:
        return double.created_by.email if double.created_by_id and double.created_by else None


class DoubleDetailSerializer(DoubleSerializer):
    """A digital double as its page shows it: training metrics, the likeness panel's figures, the latest test
    render's job, its runs and its portraits (with signed links)."""

    metrics = serializers.JSONField(
        read_only=True,
        help_text="Training figures once trained: steps, batch_size, photos, best_step, seconds, resumed_from, "
        "scores (likeness by checkpoint step).",
    )
    likeness = serializers.SerializerMethodField(help_text="The likeness panel: figures of all its portraits.")
    picks_likeness = serializers.SerializerMethodField(help_text="The same figures for its picks.")
    latest_render = serializers.SerializerMethodField(
        help_text="The latest test render or portrait action job (its `result.withheld_message` says when the "
        "explicit-content check withheld images); null when there is none."
    )
    runs = serializers.SerializerMethodField(
        help_text="Its latest client runs and previews (as its page lists them; test renders are in "
        "`portraits` and `latest_render`): [{id, kind, status, created_at}]."
    )
    portraits = serializers.SerializerMethodField(
        help_text="Its portraits, newest render first, best rank first within one (as /api/portraits/ shows them)."
    )

    class Meta(DoubleSerializer.Meta):
        fields = [*DoubleSerializer.Meta.fields, "metrics", "likeness", "picks_likeness", "latest_render"]
        fields += ["runs", "portraits"]
        read_only_fields = fields

    def _portraits(self, double: DigitalDouble) -> list[Portrait]:
        cache = self.context.setdefault("_double_portraits", {})
        if double.pk not in cache:
            cache[double.pk] = doubles.double_portraits(double=double)
        return cache[double.pk]

    @extend_schema_field(LikenessSummarySerializer)
    def get_likeness(self, double: DigitalDouble) -> dict[str, Any]:
        return summarise_likeness(p.likeness for p in self._portraits(double)).as_dict()

    @extend_schema_field(LikenessSummarySerializer)
    def get_picks_likeness(self, double: DigitalDouble) -> dict[str, Any]:
        return summarise_likeness(p.likeness for p in self._portraits(double) if p.is_pick).as_dict()

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_latest_render(self, double: DigitalDouble) -> dict[str, Any] | None:
        job = doubles.latest_render_job(double=double)
        return JobSerializer(job).data if job is not None else None

    @extend_schema_field(DoubleRunSerializer(many=True))
    def get_runs(self, double: DigitalDouble) -> list[dict[str, Any]]:
        return [
            {"id": run.pk, "kind": run.kind, "status": run.status, "created_at": run.created_at}
            for run in runs.runs_of_double(double=double)
        ]

    @extend_schema_field(PortraitSerializer(many=True))
    def get_portraits(self, double: DigitalDouble) -> list[dict[str, Any]]:
        return PortraitSerializer(self._portraits(double), many=True, context=self.context).data


class DoubleCreateSerializer(serializers.Serializer):
    photo_set = IdField(help_text="A photo set of the studio that is ready to train (the client page's Train form).")
    base_model = serializers.CharField(
        required=False, max_length=100, help_text="An enabled base model's name (default: the platform's default)."
    )
    class_word = serializers.CharField(
        required=False,
        max_length=10,
        default=DigitalDouble.ClassWord.PERSON,
        help_text="How prompts name the client with the trigger token: woman, man or person.",
    )


class DoubleRenderSerializer(serializers.Serializer):
    """The double page's test render form; generation.doubles.clean_render_config checks the values and refuses
    with the page's messages."""

    prompt = serializers.CharField(
        required=False, allow_blank=True, help_text="With {subject} where the client appears (1000 characters)."
    )
    negative_prompt = serializers.CharField(required=False, allow_blank=True)
    images = serializers.IntegerField(required=False, help_text="Images, one seed each from `seed` (default 1).")
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1, help_text="The first seed.")
    seeds = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**32 - 1),
        required=False,
        max_length=64,
        help_text="Explicit seeds instead of `images` and `seed`.",
    )
    steps = serializers.IntegerField(required=False, help_text="1-100 (default 30).")
    identity_weight = serializers.FloatField(required=False, help_text="0-2 (default 1).")
    scheduler = serializers.ChoiceField(choices=list(SCHEDULERS), required=False)
    guidance = serializers.FloatField(required=False, help_text="0-30 (default 7).")


class DoubleDeletedSerializer(serializers.Serializer):
    """What deleting a double deleted (generation.doubles.delete_double)."""

    doubles = serializers.IntegerField()
    portraits = serializers.IntegerField(help_text="Portraits deleted, group portraits showing the person included.")
    files = serializers.IntegerField(help_text="Files deleted from storage: the weights, portrait images.")
    group_portraits = serializers.IntegerField(help_text="Group portraits withdrawn whole.")
    checkpoint_files = serializers.IntegerField(help_text="Training checkpoints deleted from shared storage.")


class DoubleSampleSerializer(serializers.Serializer):
    is_sample = serializers.BooleanField(help_text="true: template previews can render on this double.")


class RunEstimateItemSerializer(serializers.Serializer):
    template = serializers.IntegerField(source="version.template_id")
    template_version = serializers.IntegerField(source="version.number", help_text="The version that would render.")
    images = serializers.IntegerField()
    steps = serializers.IntegerField(help_text="Denoising steps per image.")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    base_model = serializers.CharField()
    seconds = serializers.FloatField(help_text="Expected GPU seconds of rendering this template's images.")


class RunEstimateSerializer(serializers.Serializer):
    """What a run would cost (generation.runs.Estimate), as the new-run page shows it."""

    images = serializers.IntegerField()
    gpu_seconds = serializers.FloatField(help_text="Rendering plus one model load per base model.")
    render_seconds = serializers.FloatField()
    load_seconds = serializers.FloatField()
    items = RunEstimateItemSerializer(many=True)


class PreviewCreateSerializer(serializers.Serializer):
    template_version = serializers.IntegerField(min_value=1, help_text="A version of one of the studio's templates.")
    double = serializers.IntegerField(min_value=1, help_text="One of the studio's sample doubles (READY).")
