"""The groups API (couples, families), under /api/ inside a studio (routes in clients/api_urls.py):

    groups/                         GET list, POST create {name, notes, members: [client ids in slot order]}
    groups/{clientgroup_id}/        GET, PUT/PATCH (name, notes, members), DELETE (the group and its galleries)

Group runs are generation's (POST groups/{clientgroup_id}/runs/, generation/api.py). Who may do what is the intake
API's (clients/api.py): every member and API key reads; owners, managers, staff and API keys write.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from clients import groups
from clients.api import IntakeViewSet
from clients.models import ClientGroup, GroupMember
from tenants.access import acting_user

_ERROR = OpenApiResponse(description='{"error": {"code", "message"}}')


class GroupMemberSerializer(serializers.ModelSerializer):
    client = serializers.IntegerField(source="client_id", read_only=True)
    name = serializers.CharField(source="client.name", read_only=True)
    slot = serializers.IntegerField(source="position", read_only=True, help_text="Fills {subject_<slot>}.")

    class Meta:
        model = GroupMember
        fields = ["client", "name", "slot"]


class GroupSerializer(serializers.ModelSerializer):
    members = GroupMemberSerializer(many=True, read_only=True)

    class Meta:
        model = ClientGroup
        fields = ["id", "name", "notes", "members", "created_at"]
        read_only_fields = fields


class GroupWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    members = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=groups.MIN_MEMBERS,
        max_length=groups.MAX_MEMBERS,
        help_text="Client ids in slot order (the first fills {subject_1}); each with consent on record.",
    )


class GroupUpdateSerializer(GroupWriteSerializer):
    name = serializers.CharField(max_length=150, required=False)
    members = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=groups.MIN_MEMBERS,
        max_length=groups.MAX_MEMBERS,
        required=False,
    )


@extend_schema_view(
    list=extend_schema(summary="List the studio's groups of clients", tags=["groups"]),
    retrieve=extend_schema(summary="A group, with its members in slot order", tags=["groups"]),
    create=extend_schema(
        summary="Create a group of 2-6 clients",
        tags=["groups"],
        request=GroupWriteSerializer,
        responses={201: GroupSerializer, 400: _ERROR},
    ),
    update=extend_schema(
        summary="Change a group", tags=["groups"], request=GroupUpdateSerializer, responses={200: GroupSerializer}
    ),
    partial_update=extend_schema(
        summary="Change some of a group",
        tags=["groups"],
        request=GroupUpdateSerializer,
        responses={200: GroupSerializer},
    ),
    destroy=extend_schema(summary="Delete a group and its galleries (its people are kept)", tags=["groups"]),
)
class GroupViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    IntakeViewSet,
):
    serializer_class = GroupSerializer
    lookup_url_kwarg = "clientgroup_id"

    def get_queryset(self) -> QuerySet[ClientGroup]:
        return groups.group_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = GroupWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        group = groups.create_group(
            name=values["name"],
            notes=values.get("notes", ""),
            clients=values["members"],
            created_by=acting_user(request),
        )
        return Response(GroupSerializer(self.get_queryset().get(pk=group.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        group = self.get_object()
        data = GroupUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        groups.update_group(
            group=group, name=values.get("name"), notes=values.get("notes"), clients=values.get("members")
        )
        return Response(GroupSerializer(self.get_queryset().get(pk=group.pk)).data)

    def perform_destroy(self, instance: ClientGroup) -> None:
        groups.delete_group(group=instance)
