"""The intake API, under /api/ inside a studio (routes in clients/api_urls.py):

    clients/                                              GET list, POST create
    clients/{client_id}/                                  GET, PUT/PATCH (name, email, phone, notes, status)
    clients/{client_id}/consent/                          POST: record consent collected by staff (current text)
    clients/{client_id}/erase/                            POST: delete everything about the client (managers)
    clients/{client_id}/export/                           GET: a ZIP of everything kept (owners, managers, staff)
    consent-texts/                                        GET list, POST publish a new version (managers)
    consent-texts/{consenttext_id}/                       GET
    clients/{client_id}/photo-sets/                       GET list, POST create
    clients/{client_id}/photo-sets/{photoset_id}/         GET, with the readiness meter and hints
    .../photo-sets/{photoset_id}/photos/                  GET list (verdicts, signed thumbnail links),
                                                          POST multipart upload (field `files`, one or several)
    .../photo-sets/{photoset_id}/photos/{photo_id}/       GET
    .../photo-sets/{photoset_id}/upload-links/            GET list, POST create (the client's self-upload link)
    .../photo-sets/{photoset_id}/upload-links/{uploadlink_id}/  GET, DELETE revokes
    .../upload-links/{uploadlink_id}/send/                POST {email?}: email the link to the client (202)

Who may do what (tenants/permissions.py decides who is a member; 401 anonymous, 404 non-members):
- read: every member and the studio's API keys;
- write: owners, managers and staff (as on the pages), and API keys (integrations create clients, upload
  photos, send links); photographers only read;
- erase a client, publish a consent text: owners and managers, signed in (not API keys);
- export a client: owners, managers and staff, signed in (not API keys): personal data leaves by a person's
  hand, never by a key's.
Parents in the URL are checked before anything else: another studio's client or set, or a set of another
client, is a 404 whatever the method and the role.

Views are thin: serializers check input, clients.services does the writes (a refusal, IntakeError, becomes the
project's JSON error with its status), clients.selectors the reads.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from clients import selectors, services, uploads
from clients.models import Client, ConsentText, Photo, PhotoSet, UploadLink
from clients.serializers import (
    ClientCreateSerializer,
    ClientSerializer,
    ConsentRequestSerializer,
    ConsentTextCreateSerializer,
    ConsentTextSerializer,
    DeletionReceiptSerializer,
    PhotoSerializer,
    PhotoSetDetailSerializer,
    PhotoSetSerializer,
    PhotoUploadSerializer,
    UploadLinkCreateSerializer,
    UploadLinkSendSerializer,
    UploadLinkSentSerializer,
    UploadLinkSerializer,
)
from jobs.keyset import KeysetPagination
from tenants.access import acting_user
from tenants.models import MANAGING_ROLES, Role
from tenants.permissions import MANAGERS_ONLY_MESSAGE, Rule, RulePermission

CLIENT_MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.STAFF})
CLIENT_MANAGERS_MESSAGE = "Only the studio's owners, managers and staff can change clients and their photos."
ID_REGEX = r"[0-9]+"

_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class UploadParser(MultiPartParser):
    """DRF's multipart parser with the intake's answers to a body that can't be read (a file name beyond the
    bound, too many files, too much form data, a broken body): a specific code, message and 4xx status in the
    API's JSON error format instead of DRF's generic parse error or Django's HTML 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except (exceptions.ParseError, *uploads.PARSE_ERRORS) as exc:
            cause = exc.__context__ if isinstance(exc, exceptions.ParseError) else exc
            problem = uploads.describe_unreadable(cause) if cause is not None else None
            if problem is None:
                raise
            raise services.IntakeError(problem.message, problem.status, problem.code) from exc


# --- Permissions ----------------------------------------------------------------------------------------------


class IntakePermission(RulePermission):
    """The rule-based permission of tenants.permissions, with this API's default message."""

    message = CLIENT_MANAGERS_MESSAGE


WRITE_RULE: Rule = (CLIENT_MANAGING_ROLES, True, CLIENT_MANAGERS_MESSAGE)
MANAGERS_RULE: Rule = (frozenset(MANAGING_ROLES), False, MANAGERS_ONLY_MESSAGE)


class IntakeViewSet(viewsets.GenericViewSet):
    """Base: URL parents (`client_id`, `photoset_id`) loaded through the tenant-scoped managers, and one rule per
    action (`action_rules`), else WRITE_RULE for unsafe methods and none for reads."""

    permission_classes = [IntakePermission]
    lookup_value_regex = ID_REGEX
    parent_kwargs: tuple[str, ...] = ()
    action_rules: dict[str, Rule] = {}

    client: Client
    photo_set: PhotoSet

    def load_parents(self) -> None:
        if getattr(self, "swagger_fake_view", False):  # the schema generator: no request, no objects
            return
        if "client_id" in self.parent_kwargs:
            self.client = get_object_or_404(Client.objects.all(), pk=self.kwargs["client_id"])
        if "photoset_id" in self.parent_kwargs:
            self.photo_set = get_object_or_404(
                PhotoSet.objects.select_related("client"), pk=self.kwargs["photoset_id"], client_id=self.client.pk
            )

    def rule_for(self, request: Request) -> Rule | None:
        if self.action in self.action_rules:
            return self.action_rules[self.action]
        if request.method in SAFE_METHODS:
            return None
        return WRITE_RULE


# --- Clients --------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List the studio's clients",
        description="By name, paginated by cursor: follow `next` and `previous`; there is no count.",
        tags=["clients"],
    ),
    retrieve=extend_schema(summary="A client, with the consent on record", tags=["clients"]),
    create=extend_schema(
        summary="Add a client",
        tags=["clients"],
        request=ClientCreateSerializer,
        responses={201: ClientSerializer, 400: _ERROR},
    ),
    update=extend_schema(summary="Change a client", tags=["clients"]),
    partial_update=extend_schema(summary="Change some of a client's details", tags=["clients"]),
)
class ClientViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, IntakeViewSet
):
    """The studio's end clients. Consent is recorded with the `consent` action, never by writing fields."""

    serializer_class = ClientSerializer
    pagination_class = KeysetPagination
    keyset_ordering = selectors.CLIENT_LIST_ORDER
    lookup_url_kwarg = "client_id"
    action_rules = {"erase": MANAGERS_RULE, "export": (CLIENT_MANAGING_ROLES, False, CLIENT_MANAGERS_MESSAGE)}

    def get_queryset(self) -> QuerySet[Client]:
        return selectors.clients_list().select_related("consent_text", "consent_collected_by")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ClientCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client = services.create_client(**data.validated_data, created_by=acting_user(request))
        client = self.get_queryset().get(pk=client.pk)
        return Response(ClientSerializer(client).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Record the client's consent, collected by staff",
        description="Records that the client agreed to the studio's consent text in force (method `staff`, the "
        "caller's IP, the signed-in member who collected it). No photo is accepted before consent is on record.",
        request=ConsentRequestSerializer,
        responses={200: ClientSerializer, 404: _ERROR, 409: _ERROR},
        tags=["clients"],
    )
    @action(detail=True, methods=["post"])
    def consent(self, request: Request, client_id: str | None = None) -> Response:
        client: Client = self.get_object()
        data = ConsentRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        current = services.current_consent_text()
        wanted = data.validated_data.get("consent_text_id")
        if wanted is not None and wanted != current.pk:
            if not ConsentText.objects.filter(pk=wanted).exists():
                raise exceptions.ValidationError({"consent_text_id": ["No such consent text in this studio."]})
            raise services.IntakeError(
                f"Consent must be to the text in force: version {current.version} (id {current.pk}).", 409, "stale"
            )
        services.record_consent(
            client=client,
            consent_text=current,
            method=Client.ConsentMethod.STAFF,
            ip=request.META.get("REMOTE_ADDR") or None,
            collected_by=acting_user(request),
        )
        return Response(ClientSerializer(self.get_queryset().get(pk=client.pk)).data)

    @extend_schema(
        summary="Delete everything about the client",
        description="Photos and their files (from storage), derivatives, digital doubles, portraits, galleries, "
        "upload links, photo sets, then the client. Owners and managers only. Answers the deletion receipt "
        "(ids and counts, no personal data) kept in the studio's audit log. 409 when records that must be kept "
        "(orders of the client's galleries) refer to the client: nothing is deleted.",
        request=None,
        responses={200: DeletionReceiptSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
        tags=["clients"],
    )
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, client_id: str | None = None) -> Response:
        client: Client = self.get_object()
        receipt = services.erase_client(client=client, performed_by=acting_user(request))
        return Response(DeletionReceiptSerializer(receipt).data)

    @extend_schema(
        summary="Export everything kept about the client (ZIP)",
        description="For a data-access request: client.json, photos.json and the files still kept.",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 403: _ERROR, 404: _ERROR},
        tags=["clients"],
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, client_id: str | None = None) -> FileResponse:
        client: Client = self.get_object()
        filename, stream = services.export_client_zip(client=client)
        return FileResponse(stream, as_attachment=True, filename=filename, content_type="application/zip")


# --- Consent texts --------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The studio's consent texts, newest version first", tags=["consent"]),
    retrieve=extend_schema(summary="One version of the consent text", tags=["consent"]),
    create=extend_schema(
        summary="Publish a new version of the consent text",
        description="Owners and managers. Earlier consents keep pointing at the version they agreed to.",
        tags=["consent"],
        request=ConsentTextCreateSerializer,
        responses={201: ConsentTextSerializer, 400: _ERROR, 403: _ERROR},
    ),
)
class ConsentTextViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, IntakeViewSet):
    serializer_class = ConsentTextSerializer
    lookup_url_kwarg = "consenttext_id"
    action_rules = {"create": MANAGERS_RULE}

    def current_version(self) -> int:
        """The version in force (version 1, the default text, is created on first use)."""
        if not hasattr(self, "_current_version"):
            self._current_version = services.current_consent_text().version
        return self._current_version

    def get_queryset(self) -> QuerySet[ConsentText]:
        if not getattr(self, "swagger_fake_view", False):
            self.current_version()  # so that a studio's first look at the list shows the default text
        # The API's consent texts are the English ones (the language of the staff's pages and the API); the texts
        # in the clients' other languages are edited on the consent text page.
        return ConsentText.objects.filter(language="en").select_related("created_by").order_by("-version")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["current_version"] = self.current_version()
        return context

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ConsentTextCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        text = services.publish_consent_text(body=data.validated_data["body"], created_by=acting_user(request))
        self._current_version = max(text.version, self.current_version())
        return Response(
            ConsentTextSerializer(text, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )


# --- Photo sets -----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="A client's photo sets, newest first", tags=["photo sets"]),
    retrieve=extend_schema(
        summary="A photo set with its readiness",
        description="`readiness`: accepted / rejected / pending counts, the meter (percent of the recommended "
        "number), the level, whether training may start, and hints.",
        tags=["photo sets"],
        responses={200: PhotoSetDetailSerializer, 404: _ERROR},
    ),
    create=extend_schema(
        summary="Start a new photo set for the client",
        tags=["photo sets"],
        request=None,
        responses={201: PhotoSetDetailSerializer, 404: _ERROR},
    ),
)
class PhotoSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, IntakeViewSet):
    serializer_class = PhotoSetSerializer
    lookup_url_kwarg = "photoset_id"
    parent_kwargs = ("client_id",)

    def get_queryset(self) -> QuerySet[PhotoSet]:
        if getattr(self, "swagger_fake_view", False):
            return PhotoSet.objects.none()
        return selectors.client_photo_sets(client=self.client)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return PhotoSetDetailSerializer if self.action in ("retrieve", "create") else PhotoSetSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        photo_set = services.create_photo_set(client=self.client, created_by=acting_user(request))
        photo_set = self.get_queryset().get(pk=photo_set.pk)
        return Response(PhotoSetDetailSerializer(photo_set).data, status=status.HTTP_201_CREATED)


# --- Photos ---------------------------------------------------------------------------------------------------


class PhotoUploadResultSerializer(serializers.Serializer):
    photos = PhotoSerializer(many=True, help_text="One row per file sent: pending (being checked) or rejected.")
    validation_job_id = serializers.IntegerField(help_text="The job checking the set (see /api/jobs/).")


@extend_schema_view(
    list=extend_schema(
        summary="The set's photos with their verdicts",
        description="Each photo: status (pending, accepted, rejected), reason_code and a human reason, and a "
        "signed, expiring link to its thumbnail.",
        tags=["photo sets"],
    ),
    retrieve=extend_schema(summary="One photo and its verdict", tags=["photo sets"]),
    create=extend_schema(
        summary="Upload photos to the set",
        description="multipart/form-data with one or several files under the field `files`. Each file becomes a "
        "photo: pending (then checked by the set's validation job) or rejected at once with a reason (too big, "
        "not a photo...). A bad file never fails the request; an over-long or strange file name is kept shortened "
        "and made safe (`original_name`). 409 when the client's consent is not on record or the set is closed; "
        "400 (`name_too_long`, `too_many_files`, `unreadable_upload`) or 413 (`too_large`) when the body can't be "
        "read; nothing is stored then.",
        tags=["photo sets"],
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoUploadResultSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR, 413: _ERROR},
    ),
)
class PhotoViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, IntakeViewSet):
    serializer_class = PhotoSerializer
    lookup_url_kwarg = "photo_id"
    parent_kwargs = ("client_id", "photoset_id")
    parser_classes = [UploadParser, FormParser, JSONParser]

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        if self.action == "create":
            # Before anything (CSRF check included) reads the body: files above the limit are refused while
            # they stream in, never held whole.
            uploads.limit_upload_size(request)
        return drf_request

    def get_queryset(self) -> QuerySet[Photo]:
        if getattr(self, "swagger_fake_view", False):
            return Photo.objects.none()
        return selectors.photo_set_photos(photo_set=self.photo_set)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        files = request.FILES.getlist("files")
        refused = uploads.refused_uploads(request)
        if not files and not refused:
            raise exceptions.ValidationError({"files": ["Send one or more photos under the field name `files`."]})
        photo_set = self.photo_set
        with transaction.atomic():
            photos = [
                services.add_photo(
                    photo_set=photo_set,
                    upload=None,
                    source=Photo.Source.API,
                    original_name=name,
                    rejection=(code, message),
                )
                for name, code, message in refused
            ]
            photos += [
                services.add_photo(
                    photo_set=photo_set, upload=upload, source=Photo.Source.API, original_name=upload.name or ""
                )
                for upload in files
            ]
            job = services.request_validation(photo_set=photo_set, user=acting_user(request))
        context = self.get_serializer_context()
        body = {"photos": PhotoSerializer(photos, many=True, context=context).data, "validation_job_id": job.pk}
        return Response(body, status=status.HTTP_201_CREATED)


# --- Upload links ---------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The set's self-upload links", tags=["photo sets"]),
    retrieve=extend_schema(summary="One self-upload link", tags=["photo sets"]),
    create=extend_schema(
        summary="Create a self-upload link for the client",
        description="The answer's `url` is the link to send: no account needed, it expires (`days`, default 7) "
        "and can be revoked.",
        tags=["photo sets"],
        request=UploadLinkCreateSerializer,
        responses={201: UploadLinkSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
    ),
    destroy=extend_schema(summary="Revoke a self-upload link", tags=["photo sets"], responses={204: None, 404: _ERROR}),
)
class UploadLinkViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, IntakeViewSet
):
    serializer_class = UploadLinkSerializer
    lookup_url_kwarg = "uploadlink_id"
    parent_kwargs = ("client_id", "photoset_id")

    def get_queryset(self) -> QuerySet[UploadLink]:
        if getattr(self, "swagger_fake_view", False):
            return UploadLink.objects.none()
        return UploadLink.objects.filter(photo_set=self.photo_set).order_by("-created_at", "-id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = UploadLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.create_upload_link(
            photo_set=self.photo_set, created_by=acting_user(request), days=data.validated_data.get("days")
        )
        return Response(self.get_serializer(link).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: UploadLink) -> None:
        services.revoke_upload_link(link=instance)

    @extend_schema(
        summary="Email the link to the client",
        description="As the set's page does: the email in the studio's language for its clients, with the studio's "
        "contact address as Reply-To, sent once the request is done. `email` defaults to the client's own.",
        tags=["photo sets"],
        request=UploadLinkSendSerializer,
        responses={202: UploadLinkSentSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    @action(detail=True, methods=["post"])
    def send(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        link = self.get_object()
        data = UploadLinkSendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        to = data.validated_data.get("email") or self.client.email
        if not to:
            raise services.IntakeError(_("This client has no email address: give the address to send the link to."))
        url = request.build_absolute_uri(reverse("self_upload", kwargs={"link_token": link.token}))
        services.send_upload_link(link=link, studio=request.studio, url=url, to=to)
        return Response({"sent_to": to}, status=status.HTTP_202_ACCEPTED)
