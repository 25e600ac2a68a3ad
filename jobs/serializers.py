"""API representation of a job: the same progress data as the job page. Read-only."""

from __future__ import annotations

from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField(help_text="Email of the member who started the job.")
    is_terminal = serializers.BooleanField(read_only=True, help_text="True once the job has finished.")

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "state",
            "progress",
            "progress_message",
            "error",
            "attempts",
            "max_attempts",
            "cluster",
            "cancel_requested",
            "is_terminal",
            "result",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_created_by(self, job: Job) -> str | None:
        return job.created_by.email if job.created_by_id else None
