"""The public page behind a reminder's unsubscribe link (`/s/<studio>/m/stop/<token>/`, no account: the signed
token names the client, in this studio only). GET explains and asks; the POST unsubscribes (mail scanners open
links, only a person presses the button)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from clients import messages


@never_cache
@require_http_methods(["GET", "POST"])
def stop_reminders(request: HttpRequest, token: str) -> HttpResponse:
    studio = getattr(request, "studio", None)
    if studio is None:
        raise Http404("No studio")
    client = messages.client_from_unsubscribe_token(token, studio=studio)
    if client is None:
        return render(request, "clients/stop_reminders.html", {"invalid": True}, status=404)
    if request.method == "POST":
        client = messages.unsubscribe(client=client)
    return render(request, "clients/stop_reminders.html", {"client": client, "done": client.reminders_opt_out_at})
