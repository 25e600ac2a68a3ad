"""The templates API, under /api/ inside a studio (routes in templates_app/api_urls.py):

    templates/                                               GET list (?category=, ?status=, ?archived=1),
                                                             POST create (JSON or multipart: cover, reference)
    templates/{template_id}/                                 GET; PUT/PATCH save (a new version when the render
                                                             settings change; keys left out keep their value)
    templates/{template_id}/publish/ | unpublish/ | duplicate/ | archive/ | unarchive/      POST
    templates/{template_id}/versions/                        GET list, newest first
    templates/{template_id}/versions/{templateversion_id}/   GET
    templates/{template_id}/versions/{templateversion_id}/restore/   POST: a new version with its settings
    style-loras/                                             GET list, POST multipart upload (field `file`)
    style-loras/{stylelora_id}/                              GET, DELETE (409 while a version uses it)
    starters/                                                GET the built-in starter templates
    starters/copy/                                           POST {"key"}: copy one into the catalog (draft)

Who may do what (tenants/permissions.py decides who is a member; 401 anonymous, 404 non-members):
- read: every member and the studio's API keys; staff signed in list only published templates (as on the pages);
- write: owners, managers and photographers (as on the pages), and API keys: like clients/api.py, a key may do
  what the members who do the work may, never what needs an owner or manager (there is no such action here).
  Staff get 403 with a message, once the object is known to be the studio's (another studio's id is a 404).

Views are thin: serializers carry input, templates_app.render_settings checks, templates_app.versions and
.style_loras write (SettingsInvalid becomes the project's JSON validation error with every field's message; a
TemplateError its status), selectors read.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from clients import uploads
from templates_app import lora_files, selectors, style_loras, versions
from templates_app.models import Category, StyleLora, Template, TemplateVersion
from templates_app.serializers import (
    StarterCopySerializer,
    StarterSerializer,
    StyleLoraSerializer,
    StyleLoraUploadSerializer,
    TemplateCreateSerializer,
    TemplateSavedSerializer,
    TemplateSerializer,
    TemplateUpdateSerializer,
    TemplateVersionSerializer,
)
from templates_app.starters import all_starters
from templates_app.views import EDIT_FORBIDDEN, TEMPLATE_EDITING_ROLES
from tenants.access import acting_user, membership_for
from tenants.models import Role
from tenants.permissions import IsStudioMember, refuse, request_api_key

ID_REGEX = r"[0-9]+"
_ERROR = OpenApiResponse(description='{"error": {"code", "message", "fields"?}}')
SETTINGS_KEYS = TemplateCreateSerializer.SETTINGS_KEYS


def _is_staff(request: Request) -> bool:
    if request_api_key(request) is not None:
        return False
    membership = membership_for(request._request)
    return membership is not None and membership.role == Role.STAFF


# --- Permissions ----------------------------------------------------------------------------------------------


class TemplatePermission(BasePermission):
    """Member or key first (401 / 404), then the URL's parent template (404), then, for writes, an editor or a
    key (404 for a missing object, else 403 with a message)."""

    message = EDIT_FORBIDDEN

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        if hasattr(view, "load_parents"):
            view.load_parents()
        if request.method in SAFE_METHODS or request_api_key(request) is not None:
            return True
        membership = membership_for(request._request)
        if membership is None or membership.role not in TEMPLATE_EDITING_ROLES:
            refuse(view, EDIT_FORBIDDEN)
        return True


class TemplatesViewSet(viewsets.GenericViewSet):
    permission_classes = [TemplatePermission]
    lookup_value_regex = ID_REGEX
    template: Template

    def load_parents(self) -> None:
        if getattr(self, "swagger_fake_view", False):
            return
        if "template_id" in self.kwargs and self.lookup_url_kwarg != "template_id":
            template = selectors.get_template(template_id=self.kwargs["template_id"])
            if template is None:
                raise exceptions.NotFound()
            self.template = template


def _limit_uploads(request: Any, max_bytes: int) -> None:
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        uploads.limit_upload_size(request, max_bytes=max_bytes)


def _refused_files(request: Request) -> None:
    """A 400 naming the first file the size-limiting handler refused (the body is parsed first)."""
    _ = request.data
    refused = uploads.refused_uploads(request)
    if refused:
        name, _code, message = refused[0]
        raise exceptions.ValidationError({"files": [f"{name or 'The file'}: {message}"]})


# --- Templates ------------------------------------------------------------------------------------------------


_LIST_PARAMS = [
    OpenApiParameter("category", str, enum=Category.values, description="Only this category."),
    OpenApiParameter("status", str, enum=Template.Status.values, description="Only this status."),
    OpenApiParameter("archived", bool, description="Include archived templates (default: hidden)."),
]


@extend_schema_view(
    list=extend_schema(
        summary="List the studio's templates",
        description="By name, with the current version. Archived ones are hidden unless `archived=1` or "
        "`status=archived`. Staff (signed in) see published templates only.",
        parameters=_LIST_PARAMS,
        tags=["templates"],
    ),
    retrieve=extend_schema(summary="A template with its current version", tags=["templates"]),
)
class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TemplatesViewSet):
    serializer_class = TemplateSerializer
    lookup_url_kwarg = "template_id"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            from django.conf import settings

            _limit_uploads(request, int(settings.INTAKE_MAX_UPLOAD_BYTES))
        return drf_request

    def get_queryset(self) -> QuerySet[Template]:
        if getattr(self, "swagger_fake_view", False):
            return Template.objects.none()
        if self.action != "list":
            return Template.objects.select_related(
                "current_version", "current_version__style_lora", "current_version__created_by", "created_by"
            )
        params = self.request.query_params
        category = params.get("category") or None
        state = params.get("status") or None
        if category is not None and category not in Category.values:
            raise exceptions.ValidationError({"category": [f"Unknown category {category!r}."]})
        if state is not None and state not in Template.Status.values:
            raise exceptions.ValidationError({"status": [f"Unknown status {state!r}."]})
        if _is_staff(self.request):
            state = Template.Status.PUBLISHED
        archived = params.get("archived", "").lower() in ("1", "true", "yes")
        templates = selectors.template_list(category=category, status=state, include_archived=archived)
        return templates.select_related("created_by")

    def _saved(self, template: Template, created: bool, code: int = status.HTTP_200_OK) -> Response:
        template = self.get_queryset().get(pk=template.pk)
        template.version_created = created
        return Response(TemplateSavedSerializer(template, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        summary="Create a template (a draft with version 1)",
        description="JSON, or multipart with `cover_image` / `reference_image` files. Render settings left out "
        "take their defaults (the platform's default base model).",
        request={"application/json": TemplateCreateSerializer, "multipart/form-data": TemplateCreateSerializer},
        responses={201: TemplateSavedSerializer, 400: _ERROR, 403: _ERROR},
        tags=["templates"],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _refused_files(request)
        data = TemplateCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        template = versions.create_template(
            name=values["name"],
            category=values["category"],
            description=values["description"],
            settings={k: v for k, v in values.items() if k in SETTINGS_KEYS},
            cover=values.get("cover_image"),
            note=values.get("note") or "",
            user=acting_user(request),
        )
        return self._saved(template, True, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Save a template",
        description="Name, description, category and cover change the template itself. Render settings that "
        "differ from the current version's make a new version (`version_created`); keys left out keep their "
        "value (PUT and PATCH alike). Earlier versions never change.",
        request={"application/json": TemplateUpdateSerializer, "multipart/form-data": TemplateUpdateSerializer},
        responses={200: TemplateSavedSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
        tags=["templates"],
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template: Template = self.get_object()
        _refused_files(request)
        data = TemplateUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        cover: Any = versions.KEEP
        if values.get("remove_cover_image"):
            cover = ""
        elif values.get("cover_image"):
            cover = values["cover_image"]
        settings_data = {k: v for k, v in values.items() if k in SETTINGS_KEYS}
        saved = versions.save_template(
            template=template,
            name=values.get("name"),
            description=values.get("description"),
            category=values.get("category"),
            cover=cover,
            settings=settings_data or None,
            note=values.get("note") or "",
            user=acting_user(request),
        )
        return self._saved(saved.template, saved.created)

    @extend_schema(
        summary="Save some of a template's fields",
        request={"application/json": TemplateUpdateSerializer, "multipart/form-data": TemplateUpdateSerializer},
        responses={200: TemplateSavedSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
        tags=["templates"],
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    def _act(self, func: Any, *, code: int = status.HTTP_200_OK) -> Response:
        template: Template = self.get_object()
        result = func(template=template, user=acting_user(self.request))
        result = self.get_queryset().get(pk=result.pk)
        return Response(TemplateSerializer(result, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        summary="Publish a template",
        description="Staff can then use it for clients. 409 when it is archived or its current version can't be "
        "rendered (e.g. its base model is not enabled on the platform).",
        request=None,
        responses={200: TemplateSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, template_id: str | None = None) -> Response:
        return self._act(versions.publish)

    @extend_schema(
        summary="Unpublish a template (back to draft)",
        request=None,
        responses={200: TemplateSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, template_id: str | None = None) -> Response:
        return self._act(versions.unpublish)

    @extend_schema(
        summary="Archive a template",
        description="Hidden from the default list; it can't be published or run until unarchived.",
        request=None,
        responses={200: TemplateSerializer, 403: _ERROR, 404: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, template_id: str | None = None) -> Response:
        return self._act(versions.archive)

    @extend_schema(
        summary="Unarchive a template (as a draft)",
        request=None,
        responses={200: TemplateSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, template_id: str | None = None) -> Response:
        return self._act(versions.unarchive)

    @extend_schema(
        summary="Duplicate a template",
        description='A draft named "Copy of …" whose version 1 has the current version\'s settings.',
        request=None,
        responses={201: TemplateSerializer, 403: _ERROR, 404: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, template_id: str | None = None) -> Response:
        return self._act(versions.duplicate, code=status.HTTP_201_CREATED)


# --- Versions -------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="A template's versions, newest first", tags=["templates"]),
    retrieve=extend_schema(summary="One version of a template (immutable)", tags=["templates"]),
)
class TemplateVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TemplatesViewSet):
    serializer_class = TemplateVersionSerializer
    lookup_url_kwarg = "templateversion_id"

    def get_queryset(self) -> QuerySet[TemplateVersion]:
        if getattr(self, "swagger_fake_view", False):
            return TemplateVersion.objects.none()
        return selectors.template_versions(template=self.template)

    @extend_schema(
        summary="Restore a version",
        description='Makes a new version with this version\'s settings (note "Restored from version N"). 409 when '
        "they are the current settings already, or no longer valid.",
        request=None,
        responses={201: TemplateVersionSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["templates"],
    )
    @action(detail=True, methods=["post"])
    def restore(
        self, request: Request, template_id: str | None = None, templateversion_id: str | None = None
    ) -> Response:
        version: TemplateVersion = self.get_object()
        new = versions.restore_version(template=self.template, version=version, user=acting_user(request))
        new = self.get_queryset().get(pk=new.pk)
        return Response(self.get_serializer(new).data, status=status.HTTP_201_CREATED)


# --- Style LoRAs ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The studio's style LoRAs", tags=["style LoRAs"]),
    retrieve=extend_schema(summary="One style LoRA", tags=["style LoRAs"]),
    destroy=extend_schema(
        summary="Delete a style LoRA",
        description="409 while a template version uses it: versions never change.",
        responses={204: None, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["style LoRAs"],
    ),
)
class StyleLoraViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TemplatesViewSet):
    serializer_class = StyleLoraSerializer
    lookup_url_kwarg = "stylelora_id"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method == "POST":
            # Before anything (CSRF check included) reads the body: a file above the limit is refused while it
            # streams in, never held whole.
            _limit_uploads(request, lora_files.max_bytes())
        return drf_request

    def get_queryset(self) -> QuerySet[StyleLora]:
        if getattr(self, "swagger_fake_view", False):
            return StyleLora.objects.none()
        return selectors.style_loras()

    @extend_schema(
        summary="Upload a style LoRA",
        description="multipart/form-data: `file` (.safetensors only; pickle formats are refused), `name`, "
        "`base_model` (the model it is made for: its shapes are checked). A bad file gets 400 with the specific "
        "reason and nothing is stored; the same file twice is a 409.",
        request={"multipart/form-data": StyleLoraUploadSerializer},
        responses={201: StyleLoraSerializer, 400: _ERROR, 403: _ERROR, 409: _ERROR},
        tags=["style LoRAs"],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        upload = request.FILES.get("file")  # parses the body: refused files are known from here on
        if uploads.refused_uploads(request):
            raise exceptions.ValidationError({"file": [lora_files.too_large_message(lora_files.max_bytes())]})
        if upload is None:
            raise exceptions.ValidationError({"file": ["Send the LoRA's .safetensors file in the field `file`."]})
        lora = style_loras.upload_style_lora(
            upload=upload,
            name=str(request.data.get("name") or ""),
            base_model=str(request.data.get("base_model") or ""),
            user=acting_user(request),
        )
        return Response(self.get_serializer(lora).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: StyleLora) -> None:
        style_loras.delete_style_lora(lora=instance)


# --- Starters -------------------------------------------------------------------------------------------------


class StarterViewSet(TemplatesViewSet):
    serializer_class = StarterSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Template]:
        """No rows: the starters are built in (all_starters). DRF's browsable API asks a list view for its queryset
        (for its filter form), which raised without this: a 500 instead of the page."""
        return Template.objects.none()

    @extend_schema(
        summary="The built-in starter templates",
        description="Any studio can copy one into its own catalog (`starters/copy/`).",
        responses={200: StarterSerializer(many=True)},
        tags=["templates"],
    )
    def list(self, request: Request) -> Response:
        return Response(StarterSerializer(all_starters(), many=True).data)

    @extend_schema(
        summary="Copy a starter template into the studio's catalog",
        description="A draft template on the platform's default base model (`starter_key` records the source).",
        request=StarterCopySerializer,
        responses={201: TemplateSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["templates"],
    )
    @action(detail=False, methods=["post"])
    def copy(self, request: Request) -> Response:
        data = StarterCopySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = versions.copy_starter(key=data.validated_data["key"], user=acting_user(request))
        template = selectors.get_template(template_id=template.pk)
        return Response(TemplateSerializer(template, context={"request": request}).data, status=status.HTTP_201_CREATED)
