"""Streaming uploads with a per-file size limit.

`limit_upload_size(request)` puts :class:`SizeLimitedUploadHandler` in front of Django's handlers. It counts the
bytes of each file as they stream in; when a file passes `INTAKE_MAX_UPLOAD_BYTES` it raises `SkipFile`: Django
closes (and deletes) what the next handlers had written for that file, reads and discards the rest of it, and
the file never reaches `request.FILES`. Below the limit the chunks go on to Django's own handlers (memory up to
FILE_UPLOAD_MAX_MEMORY_SIZE, a temporary file above), so no file is ever held whole in memory beyond the limit.
`refused_uploads(request)` then lists the refused files as (original name, "too_large", message), so a view can
record them as rejected photos (`clients.services.add_photo(upload=None, rejection=(code, message))`).

It must run before anything reads `request.POST` / `request.FILES`. Django's CSRF middleware reads
`request.POST` in `process_view`, so a page view uses :func:`streaming_upload_view`, which exempts the view from
the middleware, installs the handler, then runs the CSRF check itself (Django's documented pattern). A DRF view
calls `limit_upload_size(request)` in `initialize_request()` (before authentication and parsing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

REFUSED_ATTR = "_intake_refused_uploads"


def too_large_message(max_bytes: int) -> str:
    if max_bytes >= 1024 * 1024:
        limit = f"{max_bytes / (1024 * 1024):.3g} MB"
    else:
        limit = f"{max(1, round(max_bytes / 1024))} KB"
    return f"This file is larger than {limit}: upload a smaller copy of the photo."


class SizeLimitedUploadHandler(FileUploadHandler):
    """Passes chunks on to the next handlers; skips a file as soon as it grows past `max_bytes`."""

    def __init__(self, request: HttpRequest | None = None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.INTAKE_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
        self.refused: list[tuple[str, str, str]] = []
        self._received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._received += len(raw_data)
        if self._received > self.max_bytes:
            self.refused.append((self.file_name or "", "too_large", too_large_message(self.max_bytes)))
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the UploadedFile


def limit_upload_size(request: HttpRequest, max_bytes: int | None = None) -> SizeLimitedUploadHandler:
    """Install the size-limiting handler first (before request.POST/FILES is read); returns it."""
    existing = getattr(request, REFUSED_ATTR, None)
    if isinstance(existing, SizeLimitedUploadHandler):
        return existing
    handler = SizeLimitedUploadHandler(request, max_bytes=max_bytes)
    request.upload_handlers.insert(0, handler)
    setattr(request, REFUSED_ATTR, handler)
    return handler


def refused_uploads(request: HttpRequest) -> list[tuple[str, str, str]]:
    """(original name, code, message) of each file the handler refused (after request.FILES was read)."""
    handler = getattr(request, REFUSED_ATTR, None)
    if handler is None:
        wrapped = getattr(request, "_request", None)  # a DRF Request
        handler = getattr(wrapped, REFUSED_ATTR, None)
    return list(handler.refused) if handler is not None else []


def streaming_upload_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a function view that takes uploads: size-limited streaming handler, CSRF still enforced."""
    protected = csrf_protect(view)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit_upload_size(request)
        return protected(request, *args, **kwargs)

    return csrf_exempt(wrapper)
