"""{% load doubles_tags %}{% client_doubles client %}: the "Digital doubles" card of the client page (its
doubles, and the training form on each photo set ready to train)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.utils.translation import gettext_lazy

from templates_app import base_models

register = template.Library()


@register.inclusion_tag("generation/_client_doubles.html", takes_context=True)
def client_doubles(context: template.Context, client: Any) -> dict[str, Any]:
    """Needs the studio's tenant context (any page inside a studio has it)."""
    from generation import doubles
    from generation.models import DigitalDouble
    from generation.views.doubles import can_manage_doubles, model_choices

    request = context.get("request")
    can_manage = request is not None and can_manage_doubles(request)
    try:
        default_model = base_models.default_model().name
    except base_models.UnknownBaseModel:
        default_model = ""
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "client": client,
        "doubles": list(doubles.client_doubles(client=client)),
        "can_manage": can_manage,
        "trainable_sets": doubles.trainable_sets(client=client) if can_manage else [],
        "model_choices": model_choices() if can_manage else [],
        "default_model": default_model,
        "class_words": DigitalDouble.ClassWord.choices,
        "minimum": settings.INTAKE_MIN_PHOTOS,
    }


FLAG_LABELS = {
    "no_face": gettext_lazy("No face found"),
    "several_faces": gettext_lazy("Several faces"),
    "low_likeness": gettext_lazy("Low likeness"),
    "blurry": gettext_lazy("Blurry face"),
    "badly_exposed": gettext_lazy("Badly exposed"),
}


@register.filter
def flag_label(flag: str) -> str:
    """A portrait flag (engine.likeness) in words: "no_face" → "No face found"."""
    return FLAG_LABELS.get(flag, str(flag).replace("_", " ").capitalize())
