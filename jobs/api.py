"""The jobs API: list and read a studio's jobs (with their progress), cancel or retry one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import selectors, services
from jobs.keyset import KeysetPagination
from jobs.models import Job
from jobs.serializers import JobSerializer
from tenants.access import acting_user

_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


@extend_schema_view(
    list=extend_schema(
        summary="List the studio's jobs, newest first",
        description="Paginated by cursor: follow `next` (older) and `previous` (newer); there is no count.",
        tags=["jobs"],
    ),
    retrieve=extend_schema(
        summary="A job with its state and progress", tags=["jobs"], responses={200: JobSerializer, 404: _ERROR}
    ),
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs of the request's studio. Permissions: the settings' default (a member or a studio API key)."""

    serializer_class = JobSerializer
    pagination_class = KeysetPagination
    keyset_ordering = selectors.JOB_LIST_ORDER
    lookup_url_kwarg = "job_id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> Any:
        return selectors.job_list()

    @extend_schema(
        summary="Cancel a job",
        description="A queued job is cancelled at once; a running one stops at its next step "
        "(`cancel_requested` becomes true). A finished job answers 409.",
        request=None,
        responses={200: JobSerializer, 404: _ERROR, 409: _ERROR},
        tags=["jobs"],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, job_id: str | None = None) -> Response:
        job: Job = self.get_object()
        services.cancel_job(job=job)  # a JobStateError (a Refused, 409 "conflict") is answered by the error handler
        return Response(self.get_serializer(job).data)

    @extend_schema(
        summary="Retry a failed or cancelled job",
        description="The job is queued again with a fresh set of attempts. Any other state answers 409.",
        request=None,
        responses={200: JobSerializer, 404: _ERROR, 409: _ERROR},
        tags=["jobs"],
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, job_id: str | None = None) -> Response:
        job: Job = self.get_object()
        services.retry_job(job=job, user=acting_user(request))
        return Response(self.get_serializer(job).data)
