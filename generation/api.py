"""The render runs and portraits API, under /api/ inside a studio (routes in generation/api_urls.py):

    runs/                                                   GET list (?kind=client|preview, ?double=<id>, ?group=<id>),
                                                            POST {double | group, items: [{template, count}]}
    runs/estimate/                                          POST the same body: images and GPU seconds, nothing started
    runs/preview/                                           POST {template_version, double}: a designer's preview run
    runs/{renderrun_id}/                                    GET, with its items and their jobs' states
    runs/{renderrun_id}/items/{renderrunitem_id}/retry/     POST: retry a failed item's job
    portraits/                                              GET list (?run=<id>, ?double=<id>, ?group=<id>, ?hidden=1)
    portraits/{portrait_id}/                                GET: recipe, likeness, rank, pick, hidden, signed links
    portraits/{portrait_id}/more-like-me/ | reroll/         POST: a small gpu job (202, the job)
    portraits/{portrait_id}/hide/ | unhide/ | pick/ | unpick/   POST: instant (200, the portrait)
    photo-sets/{photoset_id}/instant-portraits/             GET list, POST {images}: instant portraits of a
                                                            set before its double (202, the job; generation/instant.py)
    doubles/                                                GET list (?client=<id>, ?status=queued|training|ready|
                                                            failed), POST {photo_set, base_model?, class_word?}:
                                                            train from a ready set (202, the job and the double)
    doubles/{digitaldouble_id}/                             GET: status, training job, metrics, likeness figures,
                                                            latest test render, runs, portraits with signed links;
                                                            DELETE: the double, its portraits and files (the counts)
    doubles/{digitaldouble_id}/test-render/                 POST {prompt, images | seeds, seed, steps, guidance,
                                                            identity_weight, scheduler, negative_prompt} (202, job)

Who may do what: every member and the studio's API keys read; owners, managers and staff (and API keys, for
integrations) start runs, retry and act on portraits, train, test-render and delete doubles (the double pages'
roles); photographers only read. Another studio's run, item, portrait or double is a 404 whatever the method;
another studio's double, template or photo set named in a body is a 400 ("no such ... in this studio"), like a
missing one. Refusals of generation.runs (RunError) and generation.doubles (DoubleError) keep their status and
message (the pages' own). Retraining is the training job's retry (jobs API: jobs/{job_id}/retry/), as on the pages.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from clients.models import ClientGroup, PhotoSet
from generation import doubles, groups, instant, portraits, runs
from generation.models import DigitalDouble, InstantPortrait, Portrait, RenderRun
from generation.serializers import (
    DoubleCreateSerializer,
    DoubleDeletedSerializer,
    DoubleDetailSerializer,
    DoubleRenderSerializer,
    DoubleSampleSerializer,
    DoubleSerializer,
    InstantCreateSerializer,
    InstantPortraitSerializer,
    PortraitSerializer,
    PreviewCreateSerializer,
    RunCreateSerializer,
    RunEstimateSerializer,
    RunSerializer,
)
from generation.views.doubles import DOUBLE_MANAGING_ROLES
from generation.views.runs import PREVIEW_ROLES, RUN_ROLES
from jobs.serializers import JobSerializer
from templates_app.models import Template, TemplateVersion
from tenants.access import acting_user, membership_for
from tenants.api_fields import ID_RULE, MAX_ID
from tenants.permissions import IsStudioMember, refuse, request_api_key

RUNS_MESSAGE = "Only the studio's owners, managers and staff can run templates and act on portraits."
ID_REGEX = r"[0-9]+"
_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class RunPermission(BasePermission):
    """Member or key first (401 / 404); reads for all; writes for owners, managers, staff and API keys (404 for
    a missing object, else 403 with a message)."""

    message = RUNS_MESSAGE

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS or request_api_key(request) is not None:
            return True
        membership = membership_for(request._request)
        if getattr(view, "action", None) == "preview":  # the template designer's: its own roles (the view checks)
            return True
        if membership is None or membership.role not in RUN_ROLES:
            refuse(view, RUNS_MESSAGE)
        return True


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= MAX_ID:
        raise exceptions.ValidationError({name: ID_RULE})
    return number


@extend_schema_view(
    list=extend_schema(
        summary="List render runs, newest first",
        tags=["runs"],
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=["client", "preview"]),
            OpenApiParameter("double", OpenApiTypes.INT),
            OpenApiParameter("group", OpenApiTypes.INT),
        ],
    ),
    retrieve=extend_schema(
        summary="A run with its items and their jobs", tags=["runs"], responses={200: RunSerializer}
    ),
    create=extend_schema(
        summary="Run published templates for a client's digital double, or group templates for a group",
        description="One item and one gpu job per template, enqueued grouped by base model. `double`: a run for "
        "one person; `group`: a group run (templates with as many people as the group, each face rendered with "
        "that person's own double). 409 when a double is not ready or a template is not published; 400 for bad "
        "counts, a template of another base model family than the doubles', or of another number of people.",
        tags=["runs"],
        request=RunCreateSerializer,
        responses={201: RunSerializer, 400: _ERROR, 409: _ERROR},
    ),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer
    permission_classes = [RunPermission]
    lookup_url_kwarg = "renderrun_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[RenderRun]:
        qs = runs.run_list(kind=None)
        if self.action == "list":
            kind = self.request.query_params.get("kind")
            if kind in RenderRun.Kind.values:
                qs = qs.filter(kind=kind)
            double = _int_param(self.request, "double")
            if double is not None:
                qs = qs.filter(double_id=double)
            group = _int_param(self.request, "group")
            if group is not None:
                qs = qs.filter(group_id=group)
        return qs

    def _run_request(self, request: Request) -> tuple[ClientGroup | None, DigitalDouble | None, list[Any]]:
        """A run's body (create and estimate): the group or the double it names, and its (template, count)s; 400
        for anything not in this studio."""
        body = RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        ids = [entry["template"] for entry in data["items"]]
        templates = {t.pk: t for t in Template.objects.filter(pk__in=ids).select_related("current_version")}
        if "group" in data:
            group = ClientGroup.objects.filter(pk=data["group"]).first()
            if group is None:
                raise exceptions.ValidationError({"group": "There is no such group in this studio."})
            return group, None, self._items(data, templates)
        double = DigitalDouble.objects.select_related("client").filter(pk=data["double"]).first()
        if double is None:
            raise exceptions.ValidationError({"double": "There is no such digital double in this studio."})
        return None, double, self._items(data, templates)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        group, double, items = self._run_request(request)
        if group is not None:
            run = groups.start_group_run(group=group, items=items, user=acting_user(request))
        else:
            assert double is not None
            run = runs.start_run(double=double, items=items, user=acting_user(request))
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _items(data: dict[str, Any], templates: dict[int, Template]) -> list[tuple[Template, int]]:
        missing = [str(entry["template"]) for entry in data["items"] if entry["template"] not in templates]
        if missing:
            raise exceptions.ValidationError({"items": f"There is no template {', '.join(missing)} in this studio."})
        return [(templates[entry["template"]], entry["count"]) for entry in data["items"]]

    @extend_schema(
        summary="Estimate a run before starting it",
        description="The same body as starting a run, the same checks and refusals (the new-run page's estimate): "
        "how many images and the expected GPU seconds (rendering, plus one model load per base model), per "
        "template. Nothing is started or billed.",
        request=RunCreateSerializer,
        responses={200: RunEstimateSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["runs"],
    )
    @action(detail=False, methods=["post"])
    def estimate(self, request: Request) -> Response:
        group, double, items = self._run_request(request)
        if group is not None:
            plan = groups.estimate_group_run(group=group, items=items)
        else:
            assert double is not None
            plan = runs.estimate_client_run(double=double, items=items)
        return Response(RunEstimateSerializer(plan).data)

    @extend_schema(
        summary="Preview a template version on a sample double",
        description="The template designer's preview: a preview run of the version (published or not; at most 4 "
        "images) on one of the studio's sample doubles (`POST doubles/{id}/sample/`). Owners, managers, "
        "photographers and API keys. 400 for a double that is not a sample or a version that can't render with "
        "it, 409 when the double is not ready, 402 out of credits.",
        request=PreviewCreateSerializer,
        responses={201: RunSerializer, 400: _ERROR, 402: _ERROR, 403: _ERROR, 409: _ERROR},
        tags=["runs"],
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        if request_api_key(request) is None:
            membership = membership_for(request._request)
            if membership is None or membership.role not in PREVIEW_ROLES:
                refuse(self, _("Only the studio's owners, managers and photographers can preview templates."))
        body = PreviewCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = (
            TemplateVersion.objects.select_related("template")
            .filter(pk=body.validated_data["template_version"])
            .first()
        )
        if version is None:
            raise exceptions.ValidationError({"template_version": "There is no such template version in this studio."})
        double = DigitalDouble.objects.filter(pk=body.validated_data["double"], is_test_subject=True).first()
        if double is None:
            raise runs.RunError(_("Choose one of the studio's sample doubles to preview on."))
        run = runs.start_preview(version=version, double=double, user=acting_user(request))
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Retry a failed item of a run",
        description="Its job is queued again (same seeds). Any state other than failed or cancelled answers 409.",
        request=None,
        responses={200: RunSerializer, 404: _ERROR, 409: _ERROR},
        tags=["runs"],
    )
    @action(
        detail=True, methods=["post"], url_path=rf"items/(?P<renderrunitem_id>{ID_REGEX})/retry", url_name="retry-item"
    )
    def retry_item(self, request: Request, renderrun_id: str | None = None, renderrunitem_id: str = "") -> Response:
        run: RenderRun = self.get_object()
        item = run.items.filter(pk=renderrunitem_id).select_related("job", "run__double").first()
        if item is None:
            raise exceptions.NotFound()
        runs.retry_item(item=item, user=acting_user(request))
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(
        summary="List portraits (best rank first within a run)",
        tags=["portraits"],
        parameters=[
            OpenApiParameter("run", OpenApiTypes.INT),
            OpenApiParameter("double", OpenApiTypes.INT),
            OpenApiParameter("group", OpenApiTypes.INT),
            OpenApiParameter("hidden", OpenApiTypes.BOOL, description="Include hidden portraits (default: no)."),
        ],
    ),
    retrieve=extend_schema(summary="A portrait with its recipe, likeness, rank and signed links", tags=["portraits"]),
)
class PortraitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PortraitSerializer
    permission_classes = [RunPermission]
    lookup_url_kwarg = "portrait_id"
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[Portrait]:
        qs = Portrait.objects.select_related("double").order_by("-run_id", "item_id", "rank", "pk")
        if self.action == "list":
            for name in ("run", "double", "group"):
                value = _int_param(self.request, name)
                if value is not None:
                    qs = qs.filter(**{f"{name}_id": value})
            if self.request.query_params.get("hidden") not in ("1", "true", "yes"):
                qs = qs.filter(is_hidden=False)
        return qs

    def _job(self, request: Request, fn: Any) -> Response:
        portrait: Portrait = self.get_object()
        job = fn(portrait=portrait, user=acting_user(request))
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)

    def _instant(self, fn: Any, **kwargs: Any) -> Response:
        portrait: Portrait = self.get_object()
        fn(portrait=portrait, **kwargs)
        return Response(self.get_serializer(portrait).data)

    _JOB = {202: OpenApiResponse(description='{"job": <job>}'), 404: _ERROR, 409: _ERROR}

    @extend_schema(summary="More like me: the same seed, a higher identity weight", request=None, responses=_JOB)
    @action(detail=True, methods=["post"], url_path="more-like-me", url_name="more-like-me")
    def more_like_me(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._job(request, portraits.more_like_me)

    @extend_schema(summary="Re-roll: the same recipe with a new seed", request=None, responses=_JOB)
    @action(detail=True, methods=["post"])
    def reroll(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._job(request, portraits.reroll)

    @extend_schema(summary="Hide the portrait (instant)", request=None, responses={200: PortraitSerializer})
    @action(detail=True, methods=["post"])
    def hide(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._instant(portraits.hide)

    @extend_schema(summary="Show the portrait again (instant)", request=None, responses={200: PortraitSerializer})
    @action(detail=True, methods=["post"])
    def unhide(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._instant(portraits.unhide)

    @extend_schema(summary="Mark the portrait as a pick (instant)", request=None, responses={200: PortraitSerializer})
    @action(detail=True, methods=["post"])
    def pick(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._instant(portraits.set_pick, pick=True)

    @extend_schema(summary="Unmark the portrait as a pick (instant)", request=None, responses={200: PortraitSerializer})
    @action(detail=True, methods=["post"])
    def unpick(self, request: Request, portrait_id: str | None = None) -> Response:
        return self._instant(portraits.set_pick, pick=False)


@extend_schema_view(
    list=extend_schema(
        summary="A photo set's instant portraits (newest job first, best rank first)",
        description="Portraits made from the set's accepted photos before the digital double, through a "
        "training-free identity adapter: likeness against the set's photos, a summary of the recipe, signed links.",
        tags=["instant portraits"],
        responses={200: InstantPortraitSerializer(many=True), 404: _ERROR},
    ),
    create=extend_schema(
        summary="Make instant portraits from a photo set's accepted photos",
        description="Queues a gpu job (kind portraits.instant), billed per image. 409 when the set's photos were "
        "deleted, the client has no consent, no photo is accepted, the platform has no identity adapter "
        "configured or a job of this set is running; 402 out of credits; 400 for a bad number of images.",
        tags=["instant portraits"],
        request=InstantCreateSerializer,
        responses={
            202: OpenApiResponse(description='{"job": <job>}'),
            400: _ERROR,
            402: _ERROR,
            404: _ERROR,
            409: _ERROR,
        },
    ),
)
class InstantPortraitViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """photo-sets/{photoset_id}/instant-portraits/: GET list, POST start (generation/instant.py)."""

    serializer_class = InstantPortraitSerializer
    permission_classes = [RunPermission]

    def photo_set(self) -> PhotoSet:
        photo_set = PhotoSet.objects.select_related("client").filter(pk=self.kwargs["photoset_id"]).first()
        if photo_set is None:
            raise exceptions.NotFound()
        return photo_set

    def get_queryset(self) -> QuerySet[InstantPortrait]:
        if getattr(self, "swagger_fake_view", False):
            return InstantPortrait.objects.none()
        return instant.set_portraits(photo_set=self.photo_set())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        photo_set = self.photo_set()
        body = InstantCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = instant.start_instant(
            photo_set=photo_set, images=body.validated_data["images"], user=acting_user(request)
        )
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


# --- Digital doubles ------------------------------------------------------------------------------------------


class DoublePermission(BasePermission):
    """Like RunPermission, with the double pages' roles (generation.views.doubles.DOUBLE_MANAGING_ROLES): reads
    for every member and key; training, test renders and deleting for owners, managers, staff and API keys (404
    for a missing double, else 403 with a message)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS or request_api_key(request) is not None:
            return True
        membership = membership_for(request._request)
        if membership is None or membership.role not in DOUBLE_MANAGING_ROLES:
            message = _("Only the studio's owners, managers and staff can train, render and delete digital doubles.")
            refuse(view, message)
        return True


_DOUBLE_JOB = OpenApiResponse(description='{"job": <job>, "double": <double>}')


@extend_schema_view(
    list=extend_schema(
        summary="List digital doubles, newest first",
        description="Each with its status (and what the pages show: the training job's state while it is not "
        "ready), its training job, photo set and base model.",
        tags=["doubles"],
        parameters=[
            OpenApiParameter("client", OpenApiTypes.INT, description="Only this client's doubles."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=DigitalDouble.Status.values),
        ],
        responses={200: DoubleSerializer(many=True), 400: _ERROR},
    ),
    retrieve=extend_schema(
        summary="A digital double as its page shows it",
        description="Training job and metrics, the likeness panel's figures, the latest test render's job, its "
        "runs and its portraits with signed links.",
        tags=["doubles"],
        responses={200: DoubleDetailSerializer},
    ),
    create=extend_schema(
        summary="Train a digital double from a ready photo set",
        description="The client page's Train form: a queued double and its gpu job (double.train), billed. 409 "
        "when the set is not ready (used already, photos still being checked, too few accepted) or a double is "
        "already being trained from it; 400 for an unknown or disabled base model, a bad class word, or a photo "
        "set the studio does not have; 402 out of credits.",
        tags=["doubles"],
        request=DoubleCreateSerializer,
        responses={202: _DOUBLE_JOB, 400: _ERROR, 402: _ERROR, 409: _ERROR},
    ),
    destroy=extend_schema(
        summary="Delete a digital double, its portraits and their files",
        description="The double page's Delete: the encrypted weights, its portraits (full resolution, thumbnail, "
        "preview), the group portraits showing this person (withdrawn whole), the training checkpoints and "
        "working folder; its unfinished jobs are cancelled. Answers the counts of what was deleted (also logged "
        "as double_deleted).",
        tags=["doubles"],
        responses={200: DoubleDeletedSerializer},
    ),
)
class DoubleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """doubles/: the digital double pages' actions (generation/views/doubles.py) through generation.doubles and
    generation.runs."""

    serializer_class = DoubleSerializer
    permission_classes = [DoublePermission]
    lookup_url_kwarg = "digitaldouble_id"
    lookup_value_regex = ID_REGEX

    def get_serializer_class(self) -> type[DoubleSerializer]:
        return DoubleSerializer if self.action == "list" else DoubleDetailSerializer

    def get_queryset(self) -> QuerySet[DigitalDouble]:
        qs = DigitalDouble.objects.select_related("client", "photo_set", "job__created_by", "created_by").order_by(
            "-created_at", "-id"
        )
        if self.action == "list":
            client = _int_param(self.request, "client")
            if client is not None:
                qs = qs.filter(client_id=client)
            wanted = self.request.query_params.get("status")
            if wanted not in (None, ""):
                if wanted not in DigitalDouble.Status.values:
                    choices = ", ".join(DigitalDouble.Status.values)
                    raise exceptions.ValidationError({"status": _("Use one of: %(choices)s.") % {"choices": choices}})
                qs = qs.filter(status=wanted)
        return qs

    def _detail(self, double: DigitalDouble) -> dict[str, Any]:
        double = self.get_queryset().get(pk=double.pk)
        return DoubleDetailSerializer(double, context=self.get_serializer_context()).data

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = DoubleCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        photo_set = PhotoSet.objects.select_related("client").filter(pk=data["photo_set"]).first()
        if photo_set is None:
            raise exceptions.ValidationError({"photo_set": _("There is no such photo set in this studio.")})
        double = doubles.start_training(
            photo_set=photo_set,
            base_model=data.get("base_model") or None,
            class_word=data["class_word"],
            user=acting_user(request),
        )
        detail = self._detail(double)
        return Response({"job": detail["job"], "double": detail}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="A test render of a ready digital double",
        description="The double page's test render: a one-item run of the given settings (prompt with {subject}, "
        "images or seeds, steps, guidance, identity weight, scheduler), one gpu job, billed. 409 when the double "
        "is not ready; 400 for bad settings (the page's messages); 402 out of credits.",
        tags=["doubles"],
        request=DoubleRenderSerializer,
        responses={
            202: OpenApiResponse(description='{"job": <job>, "run": <run id>}'),
            400: _ERROR,
            402: _ERROR,
            404: _ERROR,
            409: _ERROR,
        },
    )
    @action(detail=True, methods=["post"], url_path="test-render", url_name="test-render")
    def test_render(self, request: Request, digitaldouble_id: str | None = None) -> Response:
        double: DigitalDouble = self.get_object()
        body = DoubleRenderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = runs.start_test_render(double=double, config=dict(body.validated_data), user=acting_user(request))
        job = run.items.select_related("job__created_by").get().job
        return Response({"job": JobSerializer(job).data, "run": run.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Mark the double as a sample for template previews, or not",
        description="As the double's page does (owners and managers, and API keys): a sample double is one the "
        "template designer's previews render on (a staff member's own, or a consenting model's).",
        request=DoubleSampleSerializer,
        responses={200: DoubleDetailSerializer, 403: _ERROR, 404: _ERROR},
        tags=["doubles"],
    )
    @action(detail=True, methods=["post"], url_path="sample", url_name="sample")
    def sample(self, request: Request, digitaldouble_id: str | None = None) -> Response:
        double: DigitalDouble = self.get_object()
        if request_api_key(request) is None:
            membership = membership_for(request._request)
            if membership is None or not membership.can_manage:
                refuse(self, _("Only the studio's owners and managers can choose its sample doubles."))
        body = DoubleSampleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        runs.set_test_subject(double=double, is_test_subject=body.validated_data["is_sample"])
        return Response(self._detail(double))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        double: DigitalDouble = self.get_object()
        counts = doubles.delete_double(double=double)
        return Response(counts)
