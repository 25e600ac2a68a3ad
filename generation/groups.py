"""Group runs (issue 17): published group templates rendered for a group of clients (clients.ClientGroup), each
member's face regenerated with that member's own digital double (engine.group).

- :func:`member_doubles`: each member and the double a group run would use (their newest ready one), or None.
- :func:`estimate_group`: images and GPU seconds of a group run (one more face pass per extra person).
- :func:`start_group_run`: one run (its `group` and a RunSubject per slot), one item and one gpu job per template,
  through runs._create_run like every run.
- :func:`group_runs` / :func:`group_portraits`: reads for the group's pages.

Refusals for people raise runs.RunError. What a group portrait is when one of its people is erased: see
generation.doubles.delete_double (the portrait is withdrawn, files included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import structlog
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clients.groups import members_of
from clients.models import Client, ClientGroup
from generation import runs
from generation.models import DigitalDouble, Portrait, PortraitSubject, RenderRun
from generation.runs import RunError
from templates_app.models import Template, TemplateVersion
from tenants.access import acting_user
from tenants.models import User

log = structlog.get_logger("generation.groups")


def boxes_of(version: TemplateVersion) -> list[tuple[float, float, float, float]] | None:
    """The version's slot boxes (fractions of the picture) when it has one per slot, else None."""
    boxes = list(getattr(version, "slot_boxes", None) or [])
    if len(boxes) != runs.slots_of(version):
        return None
    try:
        return [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in boxes]
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Member:
    client: Client
    double: DigitalDouble | None  # their newest ready double, or None

    @property
    def ready(self) -> bool:
        return self.double is not None


def member_doubles(group: ClientGroup) -> list[Member]:
    """The group's members in slot order, each with the double a run would use: their newest ready one (two
    queries)."""
    clients = members_of(group)
    newest: dict[int, DigitalDouble] = {}
    ready = DigitalDouble.objects.filter(
        client__in=[c.pk for c in clients], status=DigitalDouble.Status.READY
    ).order_by("client_id", "-trained_at", "-id")
    for double in ready:
        newest.setdefault(double.client_id, double)
    return [Member(client=c, double=newest.get(c.pk)) for c in clients]


def ready_subjects(group: ClientGroup) -> list[DigitalDouble]:
    """Each member's double in slot order, or RunError naming who isn't ready (409) or a group too small (409)."""
    members = member_doubles(group)
    if len(members) < 2:
        raise RunError(_("This group has fewer than two people now: add someone before running a group template."), 409)
    missing = [m.client.name for m in members if not m.ready]
    if missing:
        who = ", ".join(missing)
        raise RunError(
            ngettext(
                "%(who)s has no trained digital double yet: each person of a group is rendered with their own "
                "double. Train it from their photo set, then run the group.",
                "%(who)s have no trained digital double yet: each person of a group is rendered with their own "
                "double. Train it from their photo set, then run the group.",
                len(missing),
            )
            % {"who": who},
            status=409,
        )
    families = {runs.double_family(m.double) for m in members if m.double is not None}
    if len(families) > 1:
        raise RunError(
            _(
                "The group's doubles were trained for different base model families: retrain them on one family "
                "(each face is rendered on the same base model)."
            ),
            status=409,
        )
    return [m.double for m in members if m.double is not None]


def _check_group_version(version: TemplateVersion, subjects: Sequence[DigitalDouble]) -> None:
    name = version.template.name
    slots = runs.slots_of(version)
    if slots < 2:
        raise RunError(_("“%(name)s” portrays one person: choose a group template (2 to 6 people).") % {"name": name})
    if slots != len(subjects):
        raise RunError(
            _("“%(name)s” portrays %(slots)s people and this group has %(members)s.")
            % {"name": name, "slots": slots, "members": len(subjects)}
        )
    for double in subjects:
        runs.check_version(double=double, version=version)


def estimate_group(*, subjects: Sequence[DigitalDouble], items: Sequence[tuple[TemplateVersion, int]]) -> runs.Estimate:
    """runs.estimate for slot 1's double, each item plus one face pass per further person (the scene renders once;
    each face is re-rendered with its own person's LoRA)."""
    for version, _count_unused in items:
        _check_group_version(version, subjects)
    plan = runs.estimate(double=subjects[0], items=items)
    extra_people = len(subjects) - 1
    out = []
    for item in plan.items:
        spec = runs._spec(item.version)
        work, per_face = runs.item_work(item.version, item.images, spec)[:2]
        rate = item.seconds / work if work else 0.0
        if item.version.reference_mode == TemplateVersion.ReferenceMode.PHOTO:
            face = float(per_face)  # a template photo: each face is one inpainting of per_face steps
        else:
            # One face pass (stage_work counts one face of the version's face settings; no upscale).
            face_only = SimpleNamespace(face_pass=True, face_denoise=item.version.face_denoise, long_side=0)
            face = runs.stage_work(face_only, spec, item.width, item.height, item.steps)  # type: ignore[arg-type]
        out.append(replace(item, seconds=round(item.seconds + item.images * extra_people * face * rate, 2)))
    return runs.Estimate(items=out, model_loads=plan.model_loads)


def start_group_run(
    *, group: ClientGroup, items: Sequence[tuple[Template, Any]], user: User | None = None
) -> RenderRun:
    """Render published group templates (their current version; `count` images each) for the group: each member
    fills the slot of their position with their newest ready double. RunError: 409 when someone has no ready
    double; 400 for no template, a template twice, a single-person template, or one with another number of
    people; the refusals of runs.start_run otherwise; 402 when the studio is out of credits."""
    subjects, entries = group_entries(group, items)
    plan = estimate_group(subjects=subjects, items=entries)
    run = runs._create_run(
        double=subjects[0],
        kind=RenderRun.Kind.CLIENT,
        entries=entries,
        user=acting_user(user),
        plan=plan,
        group=group,
        subjects=subjects,
    )
    log.info("group_run_started", run_id=run.pk, group_id=group.pk, people=len(subjects))
    return run


def estimate_group_run(*, group: ClientGroup, items: Sequence[tuple[Template, Any]]) -> runs.Estimate:
    """What start_group_run would cost for these templates: the same checks and refusals, nothing started."""
    subjects, entries = group_entries(group, items)
    return estimate_group(subjects=subjects, items=entries)


def group_entries(
    group: ClientGroup, items: Sequence[tuple[Template, Any]]
) -> tuple[list[DigitalDouble], list[tuple[TemplateVersion, int]]]:
    """The group's people (each one's newest ready double) and the (current version, images) of each template,
    checked as start_group_run documents."""
    subjects = ready_subjects(group)
    if not items:
        raise RunError(_("Pick at least one group template."))
    if len(items) > runs.MAX_TEMPLATES_PER_RUN:
        raise RunError(_("Run at most %(max)s templates at once.") % {"max": runs.MAX_TEMPLATES_PER_RUN})
    seen: set[int] = set()
    entries: list[tuple[TemplateVersion, int]] = []
    for template, count in items:
        if template.pk in seen:
            raise RunError(_("“%(name)s” is listed twice: give it one number of images.") % {"name": template.name})
        seen.add(template.pk)
        if template.status != Template.Status.PUBLISHED or template.current_version_id is None:
            raise RunError(
                _("“%(name)s” is not published: publish it before running it for clients.") % {"name": template.name},
                409,
            )
        version = template.current_version
        assert version is not None
        version.template = template
        entries.append((version, runs._count(count, template.name)))
    return subjects, entries


# --- Reads ----------------------------------------------------------------------------------------------------


def group_runs(group: ClientGroup) -> QuerySet[RenderRun]:
    return runs.run_list(kind=RenderRun.Kind.CLIENT).filter(group=group)


def group_portraits(group: ClientGroup) -> QuerySet[Portrait]:
    """The group's portraits that can be shown (not hidden, with a preview), best first within each run, with
    their faces (slot, person, likeness)."""
    faces = PortraitSubject.objects.select_related("double__client").order_by("slot")
    return (
        Portrait.objects.filter(group=group, is_hidden=False)
        .exclude(preview="")
        .prefetch_related(Prefetch("subjects", queryset=faces))
        .order_by("-created_at", "rank", "id")
    )
