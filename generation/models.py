"""Digital doubles, render runs and their items, portraits."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from engine.portrait import stages_summary
from jobs.models import Job
from tenants.models import TenantOwned


def _private_file(prefix: str, instance: Any, ext: str) -> str:
    """A private storage path that names no person: <prefix>/<studio>/<random>.<ext>."""
    return f"{prefix}/{instance.studio_id}/{uuid.uuid4().hex}.{ext}"


def double_path(instance: Any, filename: str) -> str:
    # The file holds Fernet-encrypted safetensors bytes, never the plain weights.
    return _private_file("doubles", instance, "bin")


def portrait_path(instance: Any, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return _private_file("portraits", instance, ext if ext in ("png", "jpg", "webp") else "png")


class DigitalDouble(TenantOwned):
    """A client's digital double: an identity LoRA trained on the accepted photos of one photo set, and the
    identity centroid of those photos (for likeness scores). Both are encrypted at rest (generation.crypto);
    the source photos are deleted from storage once training succeeds."""

    class Status(models.TextChoices):
        QUEUED = "queued", gettext_lazy("Queued")
        TRAINING = "training", gettext_lazy("Training")
        READY = "ready", gettext_lazy("Ready")
        FAILED = "failed", gettext_lazy("Failed")

    class ClassWord(models.TextChoices):
        WOMAN = "woman", gettext_lazy("Woman")
        MAN = "man", gettext_lazy("Man")
        PERSON = "person", gettext_lazy("Person")

    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="doubles")
    photo_set = models.ForeignKey(
        "clients.PhotoSet", on_delete=models.SET_NULL, null=True, blank=True, related_name="doubles"
    )
    base_model = models.CharField(max_length=100, help_text="The registry name of the base model.")
    family = models.CharField(max_length=10, help_text="sd15 or sdxl")
    is_demo = models.BooleanField(default=False, help_text="Trained on the tiny demo model (its images are noise).")
    trigger = models.CharField(max_length=32, help_text="The rare token that names this person in prompts.")
    class_word = models.CharField(max_length=10, choices=ClassWord.choices, default=ClassWord.PERSON)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Fernet-encrypted safetensors bytes (generation.crypto); the path names no person.
    lora_file = models.FileField(upload_to=double_path, max_length=255, blank=True)
    # Fernet-encrypted float32 bytes of the 128-d identity centroid.
    centroid_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    config = models.JSONField(default=dict, blank=True, help_text="Training overrides (rank, steps, ...).")
    metrics = models.JSONField(default=dict, blank=True, help_text="steps, best_step, scores, seconds, resumed_from")
    is_test_subject = models.BooleanField(default=False, help_text="A sample double (not a real client's).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "client"], name="double_studio_client"),
            models.Index(fields=["studio", "status"], name="double_studio_status"),
            # The dashboard's doubles trained last (generation.selectors.recent_ready_doubles).
            models.Index(
                fields=["studio", "-trained_at", "-id"],
                name="double_studio_trained",
                condition=models.Q(trained_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Digital double {self.pk} ({self.get_status_display()})"

    @property
    def trigger_phrase(self) -> str:
        """How prompts name the person: "<trigger> <class word>" (replaces {subject})."""
        return f"{self.trigger} {self.class_word}"

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    def _shown(self) -> tuple[str, str]:
        """(badge colour, words) of what is true now: a double that isn't ready shows its training job's state,
        so a cancelled training reads "Cancelled", and a retried one "Queued" then "Training" (the stored status
        only changes once the worker picks the job up). Uses `job` (select it with the double)."""
        if self.status == self.Status.READY:
            return "succeeded", _("Ready")
        job = self.job if self.job_id else None
        if job is not None:
            shown = {
                Job.State.QUEUED: ("queued", _("Queued")),
                Job.State.RUNNING: ("running", _("Training")),
                Job.State.CANCELLED: ("cancelled", _("Cancelled")),
                Job.State.FAILED: ("failed", _("Failed")),
            }.get(job.state)
            if shown is not None:
                return shown
        return {
            self.Status.QUEUED: ("queued", _("Queued")),
            self.Status.TRAINING: ("running", _("Training")),
        }.get(self.status, ("failed", _("Failed")))

    @property
    def badge_state(self) -> str:
        """The job-state badge colour of what is shown (queued, running, succeeded, cancelled, failed)."""
        return self._shown()[0]

    @property
    def status_label(self) -> str:
        """The status in words, as every page shows it (see `_shown`)."""
        return self._shown()[1]

    @property
    def in_progress(self) -> bool:
        """Queued or training (by its job, when it has one)."""
        return self.badge_state in ("queued", "running")


class RenderRun(TenantOwned):
    """Templates rendered for one digital double: a client run (staff run published templates for a client), a
    designer's preview (a template version on a sample double), or a test render from the double's page (one
    item of an unsaved template version: its settings are the item's). One RenderRunItem, and one gpu job, per
    template version; the run's status is derived from its items' jobs (generation/runs.py, docs/runs.md)."""

    class Kind(models.TextChoices):
        CLIENT = "client", gettext_lazy("Client run")
        PREVIEW = "preview", gettext_lazy("Designer preview")
        TEST = "test", gettext_lazy("Test render")

    class Status(models.TextChoices):
        # Derived from the items' jobs, never stored (see run_status()).
        QUEUED = "queued", gettext_lazy("Queued")
        RUNNING = "running", gettext_lazy("Running")
        DONE = "done", gettext_lazy("Done")
        PARTLY_FAILED = "partly_failed", gettext_lazy("Partly failed")
        FAILED = "failed", gettext_lazy("Failed")

    double = models.ForeignKey(DigitalDouble, on_delete=models.CASCADE, related_name="runs")
    # A group run (generation/groups.py): the group portrayed, each member's double in `subjects` (slot 1 is also
    # `double`). Empty for a run of one person.
    group = models.ForeignKey(
        "clients.ClientGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CLIENT)
    images = models.PositiveIntegerField(default=0, help_text="Images asked for, over all items.")
    gpu_seconds = models.FloatField(default=0.0, help_text="The estimate of GPU time when the run started.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "-created_at"], name="renderrun_studio_created"),
            models.Index(fields=["studio", "double"], name="renderrun_studio_double"),
        ]

    def __str__(self) -> str:
        return f"Render run {self.pk} ({self.get_kind_display()})"

    @property
    def status(self) -> str:
        """Derived from the items' jobs (uses a prefetched `items` with their jobs when there is one)."""
        return run_status([item.job for item in self.items.all()])

    def get_status_display(self) -> str:
        return str(self.Status(self.status).label)

    @property
    def badge_state(self) -> str:
        """The job-state badge colour of the status."""
        return {"queued": "queued", "running": "running", "done": "succeeded"}.get(self.status, "failed")


def run_status(jobs: list[Job | None]) -> str:
    """A run's status from its items' jobs: queued (nothing started), running (something queued or running and
    something started or finished), done (every job succeeded), partly failed (finished, some failed or were
    cancelled, some succeeded), failed (finished, none succeeded). A missing job counts as failed."""
    states = [job.state if job is not None else Job.State.FAILED for job in jobs]
    if not states:
        return RenderRun.Status.FAILED
    active = {Job.State.QUEUED, Job.State.RUNNING}
    if all(state == Job.State.QUEUED for state in states):
        return RenderRun.Status.QUEUED
    if any(state in active for state in states):
        return RenderRun.Status.RUNNING
    if all(state == Job.State.SUCCEEDED for state in states):
        return RenderRun.Status.DONE
    if any(state == Job.State.SUCCEEDED for state in states):
        return RenderRun.Status.PARTLY_FAILED
    return RenderRun.Status.FAILED


class RenderRunItem(TenantOwned):
    """One template version of a run: how many images, the seeds drawn when the run started (a retried job
    renders the same ones), its place in the enqueue order (`position`: grouped by base model), and its job.
    A test render's item has no template version row: `settings` holds the render settings of its unsaved
    version (generation.runs.item_version)."""

    run = models.ForeignKey(RenderRun, on_delete=models.CASCADE, related_name="items")
    template_version = models.ForeignKey(
        "templates_app.TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    settings = models.JSONField(
        default=dict, blank=True, help_text="A test render's settings (an unsaved template version); else empty."
    )
    images = models.PositiveSmallIntegerField()
    position = models.PositiveSmallIntegerField(default=0, help_text="Enqueue order within the run (0 first).")
    seeds = models.JSONField(default=list, blank=True)
    gpu_seconds = models.FloatField(default=0.0, help_text="The estimate of this item's GPU time.")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["run", "position", "id"]
        indexes = [models.Index(fields=["studio", "run", "position"], name="runitem_studio_run")]

    def __str__(self) -> str:
        return f"Item {self.position} of run {self.run_id}"


class Portrait(TenantOwned):
    """One rendered image of a digital double, with the full recipe that reproduces it, its likeness score
    (0-100), flags and rank within its render run. Portraits of template runs (`run`, `item`,
    `template_version`) also have a thumbnail and a watermarked preview, and can be picks or hidden."""

    double = models.ForeignKey(DigitalDouble, on_delete=models.CASCADE, related_name="portraits")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    run = models.ForeignKey(RenderRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="portraits")
    item = models.ForeignKey(RenderRunItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="portraits")
    template_version = models.ForeignKey(
        "templates_app.TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    image = models.FileField(upload_to=portrait_path, max_length=255, blank=True)
    thumbnail = models.FileField(upload_to=portrait_path, max_length=255, blank=True)
    preview = models.FileField(upload_to=portrait_path, max_length=255, blank=True, help_text="Watermarked.")
    is_pick = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False)
    recipe = models.JSONField(default=dict, blank=True)
    likeness = models.FloatField(null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)
    is_demo = models.BooleanField(default=False, help_text="Rendered by the tiny demo model (noise).")
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children", help_text="More like me"
    )
    # A group portrait: the group, and each person's face in `subjects` (`double` is slot 1's). Withdrawn (deleted,
    # files too) when any of its people's doubles is deleted: generation.doubles.delete_double.
    group = models.ForeignKey(
        "clients.ClientGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="portraits"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "rank", "id"]
        indexes = [
            models.Index(fields=["studio", "double", "-created_at"], name="portrait_studio_double"),
            models.Index(fields=["studio", "job"], name="portrait_studio_job"),
            models.Index(fields=["studio", "run"], name="portrait_studio_run"),
            models.Index(fields=["studio", "group", "-created_at"], name="portrait_studio_group"),
        ]

    def __str__(self) -> str:
        return f"Portrait {self.pk} of double {self.double_id}"

    @property
    def seed(self) -> int | None:
        value = (self.recipe or {}).get("seed")
        return value if isinstance(value, int) else None

    @property
    def identity_weight(self) -> float | None:
        value = (self.recipe or {}).get("identity_weight")
        return float(value) if isinstance(value, int | float) else None

    @property
    def output_size(self) -> list[int] | None:
        """[width, height] of the full-resolution file (the print size when the template asked for one)."""
        recipe = self.recipe or {}
        size = recipe.get("output_size")
        if isinstance(size, list) and len(size) == 2:
            return [int(size[0]), int(size[1])]
        if isinstance(recipe.get("width"), int) and isinstance(recipe.get("height"), int):
            return [recipe["width"], recipe["height"]]
        return None

    @property
    def faces(self) -> list[list[int]]:
        """The boxes [x0, y0, x1, y1] (full-resolution pixels) of the faces the face pass or the template photo
        regenerated."""
        return [list(box) for box in (self.recipe or {}).get("faces") or [] if isinstance(box, list)]

    @property
    def stages_summary(self) -> str:
        return stages_summary(self.recipe or {})


class RunSubject(TenantOwned):
    """One person of a group run: the slot they fill ({subject_<slot>}) and the digital double that renders their
    face. Deleted with the double (the run's jobs then refuse to render an incomplete group)."""

    run = models.ForeignKey(RenderRun, on_delete=models.CASCADE, related_name="subjects")
    slot = models.PositiveSmallIntegerField()
    double = models.ForeignKey(DigitalDouble, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["run", "slot"]
        constraints = [models.UniqueConstraint(fields=["studio", "run", "slot"], name="runsubject_unique_slot")]
        indexes = [models.Index(fields=["studio", "double"], name="runsubject_double")]

    def __str__(self) -> str:
        return f"Slot {self.slot} of run {self.run_id}"


class PortraitSubject(TenantOwned):
    """One face of a group portrait: whose (the slot and its double), where (`face`, output pixels) and how alike
    (`likeness`, 0-100, against that person's centroid). A group portrait is deleted whole when one of its
    people's doubles is (generation.doubles.delete_double): it is never kept with a stranger's face."""

    portrait = models.ForeignKey(Portrait, on_delete=models.CASCADE, related_name="subjects")
    slot = models.PositiveSmallIntegerField()
    double = models.ForeignKey(DigitalDouble, on_delete=models.CASCADE, related_name="+")
    face = models.JSONField(default=list, blank=True)
    likeness = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["portrait", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["studio", "portrait", "slot"], name="portraitsubject_unique_slot")
        ]
        indexes = [models.Index(fields=["studio", "double"], name="portraitsubject_double")]

    def __str__(self) -> str:
        return f"Slot {self.slot} of portrait {self.portrait_id}"


class InstantPortrait(TenantOwned):
    """A portrait rendered from a photo set's accepted photos before the client's digital double exists, through
    a training-free identity adapter (issue 17, generation/instant.py): no identity LoRA, the recipe says
    ``instant``. Likeness is scored against the centroid of the set's accepted photos. Deleted with the set, and
    by the client's erasure (files included)."""

    photo_set = models.ForeignKey("clients.PhotoSet", on_delete=models.CASCADE, related_name="instant_portraits")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    image = models.FileField(upload_to=portrait_path, max_length=255, blank=True)
    thumbnail = models.FileField(upload_to=portrait_path, max_length=255, blank=True)
    preview = models.FileField(upload_to=portrait_path, max_length=255, blank=True, help_text="Watermarked.")
    recipe = models.JSONField(default=dict, blank=True)
    likeness = models.FloatField(null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "rank", "id"]
        indexes = [models.Index(fields=["studio", "photo_set"], name="instant_studio_photoset")]

    def __str__(self) -> str:
        return f"Instant portrait {self.pk} of photo set {self.photo_set_id}"

    @property
    def seed(self) -> int | None:
        value = (self.recipe or {}).get("seed")
        return value if isinstance(value, int) else None

    @property
    def is_demo(self) -> bool:
        """Rendered by the tiny demo model (noise)."""
        return bool(((self.recipe or {}).get("base_model") or {}).get("is_demo"))
