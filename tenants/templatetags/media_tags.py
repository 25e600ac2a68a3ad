"""`{% load media_tags %}{% signed_media obj "thumbnail" %}`: a signed, expiring link to a private file (see
tenants/media.py). It takes the page's request from the context, so the link is made for whoever the page is
for: a member, or the client on their self-upload page. An object without that file gives an empty string."""

from __future__ import annotations

from typing import Any

from django import template

from tenants.media import signed_media_url

register = template.Library()


@register.simple_tag(takes_context=True)
def signed_media(context: template.Context, obj: Any, field: str, max_age: int | None = None) -> str:
    if obj is None or not getattr(obj, field, None):
        return ""
    return signed_media_url(obj=obj, field=field, request=context.get("request"), max_age=max_age)
