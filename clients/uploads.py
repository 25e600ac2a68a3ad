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

File names (issue 13, finding 10). Django's parser reads at most 1 KiB of each part's headers, so a 1,000-character
file name failed the whole request; :func:`allow_long_part_headers` (run once, in `ClientsConfig.ready()`) raises
that bound to `MAX_PART_HEADER_BYTES` (8 KiB: 1,000 characters of any script fit). The handler also takes over the
parsing (Django's documented `handle_raw_input` hook) with :class:`IntakeMultiPartParser`, which gives each file
the name :func:`safe_file_name` makes of it (no path, no control or bidi characters, NFC, at most 255 characters
with an ellipsis and the extension kept) and keeps the files whose names Django would drop without a word ("..",
only control characters, a name ending in a separator) under the name `UNNAMED`. A request that still can't be
read (a part header beyond the bound, too many files, too much form data, a broken body) is described by
:func:`unreadable_upload` as a code, a message and a 4xx status, which the views answer in JSON when JSON was
asked and as the page otherwise.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import structlog
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse, QueryDict, multipartparser
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

log = structlog.get_logger("clients")

REFUSED_ATTR = "_intake_refused_uploads"
# Each part's headers (mostly its file name) may take up to this; Django's own bound is 1 KiB. The parser doubles
# its read from 1 KiB, so the bound is a power of two. 8 KiB holds 1,000 characters of 4 bytes each in UTF-8.
MAX_PART_HEADER_BYTES = 8 * 1024
MAX_NAME_CHARS = 255  # Photo.original_name's max_length
MAX_EXTENSION_CHARS = 10
UNNAMED = "unnamed"
ELLIPSIS = "\u2026"
# What reading a multipart body can raise for a bad request (each a 400 from Django when nobody catches it).
PARSE_ERRORS: tuple[type[Exception], ...] = (
    MultiPartParserError,
    TooManyFilesSent,
    TooManyFieldsSent,
    RequestDataTooBig,
)


def _size(num_bytes: int) -> str:
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes / (1024 * 1024):.3g} MB"
    return f"{max(1, round(num_bytes / 1024))} KB"


def too_large_message(max_bytes: int) -> str:
    return f"This file is larger than {_size(max_bytes)}: upload a smaller copy of the photo."


def allow_long_part_headers() -> None:
    """Let Django's multipart parser read part headers up to MAX_PART_HEADER_BYTES (never lowers the bound).
    Django keeps the bound in a module constant (django.http.multipartparser.MAX_TOTAL_HEADER_SIZE), read at
    each part; there is no setting for it."""
    if multipartparser.MAX_TOTAL_HEADER_SIZE < MAX_PART_HEADER_BYTES:
        multipartparser.MAX_TOTAL_HEADER_SIZE = MAX_PART_HEADER_BYTES


def safe_file_name(name: str) -> str:
    """The name a photo keeps of its file: the last part of a path, composed (NFC), without control, format
    (bidi overrides and isolates, zero-width) or other unprintable characters, blanks made plain spaces, at most
    MAX_NAME_CHARS long (the end is cut with an ellipsis, the extension kept); UNNAMED when nothing is left."""
    name = unicodedata.normalize("NFC", name or "")
    name = os.path.basename(name.replace("\\", "/"))
    name = "".join(" " if ch.isspace() else ch for ch in name if ch.isspace() or ch.isprintable())
    name = " ".join(name.split())
    if not name.strip(". "):
        return UNNAMED
    if len(name) <= MAX_NAME_CHARS:
        return name
    stem, extension = os.path.splitext(name)
    if not stem or len(extension) > MAX_EXTENSION_CHARS:
        stem, extension = name, ""
    return stem[: MAX_NAME_CHARS - len(ELLIPSIS) - len(extension)] + ELLIPSIS + extension


class IntakeMultiPartParser(MultiPartParser):
    """Django's parser, with each file's name made safe by safe_file_name as it is read: a file whose name has
    nothing left once Django sanitised it ("..", ".", only control characters, a name ending in a path
    separator) is kept under UNNAMED instead of being dropped without a word, and a long name is shortened
    with an ellipsis (Django's UploadedFile would cut it at 255 characters without a mark). A part sent with an
    empty name (a browser's file input with no file chosen) is still no file."""

    def sanitize_file_name(self, file_name: str) -> str:
        return safe_file_name(super().sanitize_file_name(file_name) or "")


@dataclass(frozen=True)
class UnreadableUpload:
    """Why a whole upload request could not be read: a code and a message for people, and the HTTP status."""

    code: str
    message: str
    status: int = 400


def describe_unreadable(exc: BaseException) -> UnreadableUpload | None:
    """The answer to one of PARSE_ERRORS (None for anything else)."""
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return UnreadableUpload(
            "too_many_files",
            _("This upload has more than %(limit)s files: send at most %(limit)s files at a time.") % {"limit": limit},
        )
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return UnreadableUpload(
            "too_many_fields",
            _("This upload has more than %(limit)s form fields: send only the photos.") % {"limit": limit},
        )
    if isinstance(exc, RequestDataTooBig):
        limit = _size(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0))
        return UnreadableUpload(
            "too_large",
            _("The form fields of this upload are larger than %(limit)s: send the photos as files.") % {"limit": limit},
            413,
        )
    if isinstance(exc, MultiPartParserError):
        if "header size" in str(exc):
            return UnreadableUpload(
                "name_too_long",
                _(
                    "A file name in this upload is too long to read (more than %(limit)s): rename the file with a "
                    "shorter name and upload it again. Nothing from this upload was stored."
                )
                % {"limit": _size(MAX_PART_HEADER_BYTES)},
            )
        return UnreadableUpload(
            "unreadable_upload",
            _("This upload could not be read as multipart/form-data (%(error)s): send the photos again.")
            % {"error": exc},
        )
    return None


def unreadable_upload(request: HttpRequest) -> UnreadableUpload | None:
    """Read the request's files (install the handler first); why they can't be read, or None when they can.
    Nothing is stored before the whole body is read, so a refusal leaves the set as it was."""
    try:
        request.FILES  # noqa: B018 (parses the body)
    except PARSE_ERRORS as exc:
        problem = describe_unreadable(exc)
        assert problem is not None
        log.info("upload_unreadable", code=problem.code, detail=str(exc), path=request.path)
        return problem
    return None


class SizeLimitedUploadHandler(FileUploadHandler):
    """Passes chunks on to the next handlers; skips a file as soon as it grows past `max_bytes`."""

    def __init__(self, request: HttpRequest | None = None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.INTAKE_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
        self.refused: list[tuple[str, str, str]] = []
        self._received = 0
        self._parsing = False

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

    def handle_raw_input(
        self,
        input_data: IO[bytes],
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict] | None:
        """Parse the body with IntakeMultiPartParser (which asks this handler again: it then declines)."""
        if self._parsing or self.request is None:
            return None
        self._parsing = True
        try:
            return IntakeMultiPartParser(META, input_data, self.request.upload_handlers, encoding).parse()
        finally:
            self._parsing = False


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
