"""The API keys page inside a studio (owners and managers): list, create (the key is shown once), revoke."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tenants import api_keys
from tenants.access import manager_required, require_http_methods_of
from tenants.models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=api_keys.NAME_MAX_LENGTH,
        help_text=gettext_lazy("What will use the key, e.g. “Booking website”. Names are unique among active keys."),
    )


def _page(
    request: HttpRequest, *, form: ApiKeyForm, new_key: tuple[ApiKey, str] | None = None, status: int = 200
) -> HttpResponse:
    keys = list(ApiKey.objects.select_related("created_by").order_by("revoked_at", "-created_at", "-id"))
    context = {
        "form": form,
        "active_keys": [k for k in keys if k.is_active],
        "revoked_keys": [k for k in keys if not k.is_active],
        "new_key": new_key[0] if new_key else None,
        "new_key_plaintext": new_key[1] if new_key else None,
    }
    return render(request, "tenants/api_keys.html", context, status=status)


@never_cache  # the response that shows a new key must not be cached anywhere
@manager_required
@require_http_methods(["GET", "POST"])
def api_keys_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request, form=ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            created = api_keys.create_api_key(name=form.cleaned_data["name"], created_by=request.user)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            # Rendered, not redirected: the plaintext exists only in this response.
            return _page(request, form=ApiKeyForm(), new_key=created)
    return _page(request, form=form, status=400)


def _get_api_key(apikey_id: int) -> ApiKey:
    return get_object_or_404(ApiKey, pk=apikey_id)


@manager_required
@require_http_methods_of(_get_api_key, ["POST"])
def revoke_api_key(request: HttpRequest, apikey_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=apikey_id)
    already = not api_key.is_active
    api_keys.revoke_api_key(api_key=api_key)
    if already:
        messages.info(request, _("The key “%(name)s” was already revoked.") % {"name": api_key.name})
    else:
        messages.success(
            request, _("The key “%(name)s” is revoked: requests made with it are refused.") % {"name": api_key.name}
        )
    return redirect("api_keys")
