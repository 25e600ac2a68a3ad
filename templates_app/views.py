"""The studio's template pages: the catalog, the designer, versions, style LoRAs and the starter catalog.

Thin views: reads through templates_app.selectors, writes through templates_app.versions and .style_loras.
Every member sees the catalog and opens templates (staff see published ones, read-only); owners, managers and
photographers design: an edit action by staff is a 403 with a message, once the object is known to be the
studio's (another studio's id is a 404 whatever the method and the role, like a missing one: views of an object
look it up before they check the method; views of none use Django's require_GET etc.).

Uploads (cover and reference images, style LoRAs) stream through clients.uploads' size-limiting handler,
installed before anything reads the body (so those views check CSRF themselves, after it: Django's documented
pattern, as on the photo upload pages).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import uploads
from templates_app import (
    base_models,
    lora_files,
    pose_references,
    render_settings,
    selectors,
    style_loras,
    template_photos,
    versions,
)
from templates_app.errors import TemplateError
from templates_app.forms import (
    StarterCopyForm,
    StyleLoraUploadForm,
    TemplateForm,
    TemplateListFilterForm,
    new_template_initial,
    slot_field,
)
from templates_app.models import Category, StyleLora, Template, TemplateVersion
from templates_app.samples import samples_for
from templates_app.starters import all_starters
from tenants.access import membership_for, require_http_methods_of, studio_member_required
from tenants.models import Role

PAGE_SIZE = 25
# Who designs templates and uploads style LoRAs. Staff use published templates.
TEMPLATE_EDITING_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.PHOTOGRAPHER})
EDIT_FORBIDDEN = gettext_lazy(
    "Only the studio's owners, managers and photographers can change templates and style LoRAs. "
    "Staff use the published templates: ask a photographer for changes."
)


# --- helpers --------------------------------------------------------------------------------------------------


def can_edit(request: HttpRequest) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in TEMPLATE_EDITING_ROLES


def _forbidden(request: HttpRequest, message: str = EDIT_FORBIDDEN) -> HttpResponse:
    return render(request, "templates_app/forbidden.html", {"message": message}, status=403)


def _get_template(template_id: int) -> Template:
    return get_object_or_404(
        Template.objects.select_related("current_version", "current_version__style_lora", "created_by"),
        pk=template_id,
    )


def _model_labels() -> dict[str, str]:
    try:
        return {spec.name: spec.display_name for spec in base_models.all_models()}
    except Exception:  # noqa: BLE001 (a broken registry must not break the catalog page)
        return {}


def _upload_view(max_bytes: Callable[[], int]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A POST view taking files: the size-limiting upload handler first, then the CSRF check (the view is
    exempt from the middleware, which would read the body before the handler is in place)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        protected = csrf_protect(view)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                uploads.limit_upload_size(request, max_bytes=max_bytes())
            return protected(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorator


def _image_max_bytes() -> int:
    return int(settings.INTAKE_MAX_UPLOAD_BYTES)


def _refused_files(request: HttpRequest) -> list[str]:
    return [f"{name or 'The file'}: {message}" for name, _code, message in uploads.refused_uploads(request)]


# --- the catalog ----------------------------------------------------------------------------------------------


@studio_member_required
@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    """The studio's templates, filtered by category and status; archived ones only when asked for. One query
    for the rows whatever their number (tests/templates_app/test_queries.py)."""
    editor = can_edit(request)
    form = TemplateListFilterForm(request.GET or None)
    category = status = ""
    if form.is_valid():
        category = form.cleaned_data["category"]
        status = form.cleaned_data["status"]
    if not editor:
        status = Template.Status.PUBLISHED  # staff use published templates
    templates = selectors.template_list(category=category or None, status=status or None)
    page = Paginator(templates, PAGE_SIZE).get_page(request.GET.get("page"))
    labels = _model_labels()
    page.object_list = list(page.object_list)
    samples = samples_for(request, [template.current_version for template in page.object_list])
    for template in page.object_list:
        version = template.current_version
        template.base_model_label = labels.get(version.base_model, version.base_model) if version else ""
        template.samples = samples.get(version.pk, []) if version else []
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "templates": page.object_list,
        "form": form,
        "category": category,
        "status": status,
        "filtered": bool(category or (status and editor)),
        "query": query.urlencode(),
        "can_edit": editor,
        "categories": Category.choices,
    }
    return render(request, "templates_app/template_list.html", context)


@studio_member_required
@_upload_view(_image_max_bytes)
@require_http_methods(["GET", "POST"])
def template_create(request: HttpRequest) -> HttpResponse:
    if not can_edit(request):
        return _forbidden(request)
    if request.method == "POST":
        form = TemplateForm(request.POST, request.FILES)
        refused = _refused_files(request)
        status = 400
        if form.is_valid() and not refused and form.render_settings is not None:
            data = form.cleaned_data
            try:
                template = versions.create_template(
                    name=data["name"],
                    category=data["category"],
                    description=data["description"],
                    settings=form.render_settings,
                    cover=data.get("cover_image"),
                    note=data.get("note") or "",
                    user=request.user,
                )
            except TemplateError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = exc.status
            else:
                messages.success(request, _("“%(name)s” was created as a draft (version 1).") % {"name": template.name})
                return redirect("template_detail", template_id=template.pk)
        for message in refused:
            form.add_error(None, message)
    else:
        form, status = TemplateForm(initial=new_template_initial()), 200
    return render(request, "templates_app/template_create.html", {"form": form}, status=status)


# --- the designer ---------------------------------------------------------------------------------------------


def _designer_context(request: HttpRequest, template: Template, **extra: Any) -> dict[str, Any]:
    version = template.current_version
    editor = can_edit(request)
    history = list(selectors.template_versions(template=template))
    spec = None
    if version is not None:
        try:
            spec = base_models.get_model(version.base_model, enabled_only=False)
        except base_models.UnknownBaseModel:
            spec = None
    context = {
        "template": template,
        "version": version,
        "versions": history,
        "previous": history[1] if len(history) > 1 else None,
        "spec": spec,
        "can_edit": editor,
        "problem": versions.runnable_problem(template) if template.status != Template.Status.PUBLISHED else None,
        "form": extra.pop("form", None) or (TemplateForm(template=template) if editor else None),
        "controlnets": sorted((getattr(settings, "ENGINE_CONTROLNETS", None) or {}).keys()),
        "photo_faces": selectors.template_photo_faces(version=version) if version is not None else None,
        "pose_reference": selectors.template_pose_reference(version=version) if version is not None else None,
        "template_photo": version is not None
        and version.reference_mode == TemplateVersion.ReferenceMode.PHOTO
        and version.has_reference,
        **extra,
    }
    return context


def _get_template_version(template_id: int, templateversion_id: int) -> TemplateVersion:
    return get_object_or_404(TemplateVersion, pk=templateversion_id, template=_get_template(template_id))


def _get_style_lora(stylelora_id: int) -> StyleLora:
    return get_object_or_404(StyleLora, pk=stylelora_id)


@studio_member_required
@_upload_view(_image_max_bytes)
@require_http_methods_of(_get_template, ["GET", "POST"])
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    """GET: the designer (read-only for staff). POST: save; render settings that differ from the current
    version's become a new version. POST with `detect_faces`: nothing is saved; the page comes back with each
    person's box filled from the faces of the saved template photo (_detect_faces)."""
    template = _get_template(template_id)
    if request.method == "GET":
        return render(request, "templates_app/template_detail.html", _designer_context(request, template))
    if not can_edit(request):
        return _forbidden(request)
    if "detect_faces" in request.POST:
        return _detect_faces(request, template)
    form = TemplateForm(request.POST, request.FILES, template=template)
    refused = _refused_files(request)
    status = 400
    if form.is_valid() and not refused and form.render_settings is not None:
        data = form.cleaned_data
        cover: Any = versions.KEEP
        if data.get("remove_cover_image"):
            cover = ""
        elif data.get("cover_image"):
            cover = data["cover_image"]
        try:
            saved = versions.save_template(
                template=template,
                name=data["name"],
                description=data["description"],
                category=data["category"],
                cover=cover,
                settings=form.render_settings,
                note=data.get("note") or "",
                user=request.user,
            )
        except TemplateError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = exc.status
        else:
            if saved.created:
                messages.success(request, _("Saved as version %(number)s.") % {"number": saved.version.number})
            else:
                number = saved.version.number
                messages.success(
                    request,
                    _("Saved. The render settings are unchanged: still version %(number)s.") % {"number": number},
                )
            return redirect("template_detail", template_id=template.pk)
    for message in refused:
        form.add_error(None, message)
    context = _designer_context(request, template, form=form)
    return render(request, "templates_app/template_detail.html", context, status=status)


def _detect_faces(request: HttpRequest, template: Template) -> HttpResponse:
    """The designer's "Detect faces": the faces of the current version's template photo (the saved one) fill the
    boxes of the number of people typed, left to right, in the form as typed; nothing is saved (the photographer
    checks which face is which person, then saves). 400 with the reason when there is no template photo, fewer
    faces than people, or fewer than 2 people."""
    data = request.POST.copy()
    form = TemplateForm(data, template=template)
    slots = form.slots_shown()
    version = template.current_version
    status = 200
    try:
        if slots < 2:
            raise TemplateError(
                _("Set “People in the picture” to 2 or more first: detecting faces fills each person's box."),
                field="subject_slots",
            )
        if version is None:
            raise TemplateError(
                _("Save the template with its template photo first: faces are found in the saved photo.")
            )
        boxes = selectors.detect_slot_boxes(version=version, slots=slots)
    except TemplateError as exc:
        messages.error(request, exc.message)
        status = exc.status
    else:
        for slot, box in enumerate(boxes, start=1):
            for side, fraction in zip(render_settings.BOX_SIDES, box, strict=True):
                data[slot_field(slot, side)] = f"{round(fraction * 100, 2):g}"
        form = TemplateForm(data, template=template)
        text = _(
            "%(count)s faces found in the template photo: the boxes are filled left to right (person 1 is the "
            "leftmost). Check which face is which person, then save."
        ) % {"count": slots}
        if request.FILES:
            text += " " + _("The new photo you chose was not saved: faces are found in the saved photo.")
        messages.success(request, text)
    context = _designer_context(request, template, form=form)
    return render(request, "templates_app/template_detail.html", context, status=status)


def _template_action(action: Callable[..., Template], done: Any) -> Callable[[HttpRequest, int], HttpResponse]:
    """A POST action on a template (publish, unpublish, archive, unarchive): 404 for an unknown id, 403 for
    staff, the service's refusal as a message and its status on the designer page."""

    @studio_member_required
    @require_http_methods_of(_get_template, ["POST"])
    def view(request: HttpRequest, template_id: int) -> HttpResponse:
        template = _get_template(template_id)
        if not can_edit(request):
            return _forbidden(request)
        try:
            action(template=template, user=request.user)
        except TemplateError as exc:
            messages.error(request, exc.message)
            context = _designer_context(request, _get_template(template_id))
            return render(request, "templates_app/template_detail.html", context, status=exc.status)
        messages.success(request, str(done) % {"name": template.name})
        return redirect("template_detail", template_id=template.pk)

    return view


template_publish = _template_action(
    versions.publish, gettext_lazy("“%(name)s” is published: staff can use it for clients.")
)
template_unpublish = _template_action(
    versions.unpublish, gettext_lazy("“%(name)s” is a draft again: staff can't use it any more.")
)
template_archive = _template_action(versions.archive, gettext_lazy("“%(name)s” is archived: hidden from the catalog."))
template_unarchive = _template_action(
    versions.unarchive, gettext_lazy("“%(name)s” is back from the archive, as a draft.")
)


@studio_member_required
@require_http_methods_of(_get_template, ["POST"])
def template_duplicate(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _get_template(template_id)
    if not can_edit(request):
        return _forbidden(request)
    copy = versions.duplicate(template=template, user=request.user)
    messages.success(request, _("“%(name)s” was created as a draft copy.") % {"name": copy.name})
    return redirect("template_detail", template_id=copy.pk)


# --- versions -------------------------------------------------------------------------------------------------


def _version_param(request: HttpRequest, name: str) -> int | None | str:
    """The version id in GET `name`: an int, None when absent, or "bad"."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    return int(raw) if raw.isdigit() and len(raw) < 19 else "bad"


@studio_member_required
@require_http_methods_of(_get_template, ["GET"])
def template_compare(request: HttpRequest, template_id: int) -> HttpResponse:
    """Two versions side by side (GET `a` and `b`, version ids; default: the current version and the one
    before it), changed settings highlighted."""
    template = _get_template(template_id)
    a_id, b_id = _version_param(request, "a"), _version_param(request, "b")
    if "bad" in (a_id, b_id):
        return render(
            request,
            "templates_app/forbidden.html",
            {"title": _("Choose two versions"), "message": _("Choose two versions of this template to compare.")},
            status=400,
        )
    current = template.current_version
    if current is None:
        return redirect("template_detail", template_id=template.pk)
    b = selectors.get_version(template=template, templateversion_id=b_id) if b_id is not None else current
    if b is None:
        return render(
            request, "templates_app/forbidden.html", {"title": _("No such version"), "message": _NO_VERSION}, status=404
        )
    if a_id is not None:
        a = selectors.get_version(template=template, templateversion_id=a_id)
    else:
        a = selectors.previous_version(version=b) or b
    if a is None:
        return render(
            request, "templates_app/forbidden.html", {"title": _("No such version"), "message": _NO_VERSION}, status=404
        )
    rows = selectors.compare(a=a, b=b)
    context = {
        "template": template,
        "a": a,
        "b": b,
        "rows": rows,
        "changed": sum(1 for row in rows if row.changed),
        "versions": list(selectors.template_versions(template=template)),
        "can_edit": can_edit(request),
    }
    return render(request, "templates_app/template_compare.html", context)


_NO_VERSION = gettext_lazy("This template has no such version.")


@studio_member_required
@require_http_methods_of(_get_template_version, ["GET"])
def template_version_mask(request: HttpRequest, template_id: int, templateversion_id: int) -> HttpResponse:
    """A template photo version's photo with its soft face mask drawn over it (PNG, at most
    template_photos.PREVIEW_MAX_SIDE px): what the face pass and the client's face may change. Every member may
    see it, as they see the photo; 404 for a version of another mode (or another studio's)."""
    version = _get_template_version(template_id, templateversion_id)
    if version.reference_mode != TemplateVersion.ReferenceMode.PHOTO or not version.has_reference:
        raise Http404("This version has no template photo.")
    try:
        png = template_photos.version_mask_png(version)
    except OSError:
        raise Http404("The template photo can't be read.") from None
    return _private_png(png, "face-mask.png")


def _private_png(png: bytes, filename: str) -> HttpResponse:
    """A PNG drawn for studio members (a mask, a pose): private, cached briefly, shown inline, never sniffed."""
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@studio_member_required
@require_http_methods_of(_get_template_version, ["GET"])
def template_version_pose(request: HttpRequest, template_id: int, templateversion_id: int) -> HttpResponse:
    """The pose a pose version's portraits take (PNG, at most pose_references.PREVIEW_MAX_SIDE px): the OpenPose
    skeleton of the person in its reference photo, or the uploaded skeleton as it is. Every member may see it, as
    they see the reference image; 404 for a version of another mode (or another studio's), or whose photo shows
    no person."""
    version = _get_template_version(template_id, templateversion_id)
    if version.reference_mode != TemplateVersion.ReferenceMode.POSE or not version.has_reference:
        raise Http404("This version has no pose reference.")
    try:
        png = pose_references.version_pose_png(version)
    except pose_references.PoseNotFound:
        raise Http404("No pose was found in this reference image.") from None
    except OSError:
        raise Http404("The reference image can't be read.") from None
    return _private_png(png, "pose.png")


@studio_member_required
@require_http_methods_of(_get_template_version, ["POST"])
def template_restore(request: HttpRequest, template_id: int, templateversion_id: int) -> HttpResponse:
    """POST: a new version with an old version's settings."""
    template = _get_template(template_id)
    version = get_object_or_404(TemplateVersion, pk=templateversion_id, template=template)
    if not can_edit(request):
        return _forbidden(request)
    try:
        new = versions.restore_version(template=template, version=version, user=request.user)
    except TemplateError as exc:
        messages.error(request, exc.message)
        context = _designer_context(request, _get_template(template_id))
        return render(request, "templates_app/template_detail.html", context, status=exc.status)
    messages.success(
        request,
        _("Version %(old)s was restored as version %(new)s.") % {"old": version.number, "new": new.number},
    )
    return redirect("template_detail", template_id=template.pk)


# --- style LoRAs ----------------------------------------------------------------------------------------------


def _lora_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "loras": list(selectors.style_loras()),
        "can_edit": can_edit(request),
        "form": extra.pop("form", None) or StyleLoraUploadForm(),
        "max_mb": lora_files.max_bytes() // (1024 * 1024),
        "model_labels": _model_labels(),
        **extra,
    }


@studio_member_required
@require_GET
def style_lora_list(request: HttpRequest) -> HttpResponse:
    return render(request, "templates_app/style_lora_list.html", _lora_context(request))


@studio_member_required
@_upload_view(lora_files.max_bytes)
@require_POST
def style_lora_upload(request: HttpRequest) -> HttpResponse:
    """POST a .safetensors style LoRA (field `file`), checked before anything is stored."""
    if not can_edit(request):
        return _forbidden(request)
    form = StyleLoraUploadForm(request.POST, request.FILES)
    status = 400
    if uploads.refused_uploads(request):
        form.is_valid()
        form.errors.pop("file", None)
        form.add_error("file", lora_files.too_large_message(lora_files.max_bytes()))
    elif form.is_valid():
        data = form.cleaned_data
        try:
            lora = style_loras.upload_style_lora(
                upload=data["file"], name=data["name"], base_model=data["base_model"], user=request.user
            )
        except TemplateError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = exc.status
        else:
            family = lora_files.FAMILY_LABELS.get(lora.family, lora.family)
            messages.success(
                request,
                _("“%(name)s” was checked and added (%(family)s, rank %(rank)s).")
                % {"name": lora.name, "family": family, "rank": lora.rank},
            )
            return redirect("style_lora_list")
    return render(request, "templates_app/style_lora_list.html", _lora_context(request, form=form), status=status)


@studio_member_required
@require_http_methods_of(_get_style_lora, ["POST"])
def style_lora_delete(request: HttpRequest, stylelora_id: int) -> HttpResponse:
    lora = get_object_or_404(StyleLora, pk=stylelora_id)
    if not can_edit(request):
        return _forbidden(request)
    try:
        style_loras.delete_style_lora(lora=lora)
    except TemplateError as exc:
        messages.error(request, exc.message)
        context = _lora_context(request)
        return render(request, "templates_app/style_lora_list.html", context, status=exc.status)
    messages.success(request, _("“%(name)s” was deleted.") % {"name": lora.name})
    return redirect("style_lora_list")


# --- the starter catalog --------------------------------------------------------------------------------------


@studio_member_required
@require_GET
def starter_catalog(request: HttpRequest) -> HttpResponse:
    copied = set(Template.objects.exclude(starter_key="").values_list("starter_key", flat=True))
    context = {
        "starters": all_starters(),
        "copied": copied,
        "can_edit": can_edit(request),
    }
    return render(request, "templates_app/starter_catalog.html", context)


@studio_member_required
@require_POST
def template_starter_copy(request: HttpRequest) -> HttpResponse:
    """POST `key`: copy a starter template into the studio's catalog as a draft."""
    if not can_edit(request):
        return _forbidden(request)
    form = StarterCopyForm(request.POST)
    message = _("Choose a starter template to copy.")
    status = 400
    if form.is_valid():
        try:
            template = versions.copy_starter(key=form.cleaned_data["key"], user=request.user)
        except TemplateError as exc:
            message, status = exc.message, exc.status
        else:
            messages.success(
                request,
                _("“%(name)s” was copied to your catalog as a draft: adapt it, then publish.")
                % {"name": template.name},
            )
            return redirect("template_detail", template_id=template.pk)
    messages.error(request, message)
    context = {
        "starters": all_starters(),
        "copied": set(Template.objects.exclude(starter_key="").values_list("starter_key", flat=True)),
        "can_edit": True,
    }
    return render(request, "templates_app/starter_catalog.html", context, status=status)
