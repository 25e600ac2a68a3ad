"""Jobs in the studio back office: read-only (jobs change only through their services and workers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.models import Job
from jobs.services import JobStateError, cancel_job
from tenants.admin_scoping import StudioScopedAdmin


@admin.register(Job)
class JobAdmin(StudioScopedAdmin):
    list_display = ("id", "kind", "state", "progress", "attempts", "created_by", "created_at", "finished_at")
    list_filter = ("state", "kind", "cluster")
    search_fields = ("kind", "error", "progress_message")
    ordering = ("-created_at",)
    list_select_related = ("created_by", "studio")
    actions = ("cancel_selected",)
    editor_roles = frozenset({"owner", "manager"})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Job._meta.fields if f.name != "studio"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Cancel the selected jobs", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = 0
        for job in queryset:
            try:
                cancel_job(job=job)
                done += 1
            except JobStateError as exc:
                self.message_user(request, f"Job {job.pk}: {exc}", messages.WARNING)
        if done:
            self.message_user(request, f"Cancellation requested for {done} job(s).", messages.SUCCESS)
