"""Client intake actions (writes): clients, consent, photo sets and photos, upload links, and the privacy
lifecycle (purging files, erasing a client, exporting what is kept).

Every function is keyword-only, runs in the current tenant context (a request, a task, `tenant_context()`),
and does its writes in one transaction; enqueueing waits for the commit. Refusals meant for people raise
:class:`IntakeError` (or :class:`UploadLinkError`) with a message and an HTTP status; a bad *file* never raises:
it becomes a rejected photo with a reason.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import IO, Any

import structlog
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients import uploads
from clients.consent import default_consent_text
from clients.models import Client, ConsentText, DeletionReceipt, Photo, PhotoSet, UploadLink
from clients.signals import client_erased
from engine.images import SNIFF_BYTES, describe_unsupported, sniff_format
from jobs.broker import queued_for_long, resend_if_lost
from jobs.models import Job
from jobs.services import enqueue_job
from tenants.access import acting_user
from tenants.context import require_studio_id
from tenants.i18n import client_language_of, supported_language
from tenants.models import User
from tenants.refusals import Refused
from tenants.services import ActionRefused

log = structlog.get_logger("clients")

VALIDATE_SET_KIND = "intake.validate_set"
MAX_LINK_DAYS = 90
MAX_CONSENT_CHARS = 20_000


class IntakeError(Refused):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with."""


class UploadLinkError(Refused):
    """A self-upload link that can't be used: unknown (404), revoked or expired (410)."""

    def __init__(self, title: str, message: str, status: int) -> None:
        super().__init__(message, status)
        self.title = title

    def __str__(self) -> str:
        return f"{self.title}: {self.message}"


# --- Clients and consent --------------------------------------------------------------------------------------


def create_client(*, name: str, email: str = "", phone: str = "", notes: str = "", created_by: User | None) -> Client:
    name = (name or "").strip()
    if not name:
        raise IntakeError(_("Enter the client's name."))
    if len(name) > Client._meta.get_field("name").max_length:
        raise IntakeError(_("The client's name is too long (150 characters at most)."))
    client = Client(
        name=name,
        email=(email or "").strip(),
        phone=(phone or "").strip()[:40],
        notes=notes or "",
        created_by=acting_user(created_by),
    )
    client.save()
    log.info("client_created", client_id=client.pk)
    return client


def consent_language(language: str | None) -> str:
    """`language` when clients can read their pages in it (settings.LANGUAGES), else English."""
    return supported_language(language) or "en"


def current_consent_text(*, language: str = "en") -> ConsentText:
    """The studio's latest consent text in `language`; its version 1 (the default text in that language,
    clients/consent.py) is created on first use."""
    language = consent_language(language)
    texts = ConsentText.objects.filter(language=language).order_by("-version")
    latest = texts.first()
    if latest is not None:
        return latest
    try:
        with transaction.atomic():
            return ConsentText.objects.create(language=language, version=1, body=default_consent_text(language))
    except IntegrityError:  # created at the same moment by another request
        return texts.first()  # type: ignore[return-value]


def publish_consent_text(*, body: str, created_by: User | None, language: str = "en") -> ConsentText:
    """A new version of the consent text in `language` (earlier consents keep pointing at the version, and the
    language, they agreed to)."""
    language = consent_language(language)
    body = (body or "").strip()
    if not body:
        raise IntakeError(_("The consent text can't be empty."))
    if len(body) > MAX_CONSENT_CHARS:
        raise IntakeError(_("The consent text is too long (%(max)s characters at most).") % {"max": MAX_CONSENT_CHARS})
    current = current_consent_text(language=language)
    if body == current.body.strip():
        return current
    for _attempt in range(3):
        try:
            with transaction.atomic():
                latest = ConsentText.objects.filter(language=language).order_by("-version").first()
                version = (latest.version if latest else 0) + 1
                text = ConsentText.objects.create(
                    language=language, version=version, body=body, created_by=acting_user(created_by)
                )
        except IntegrityError:  # another version was published at the same moment: take the next number
            continue
        log.info("consent_text_published", version=text.version, language=language)
        return text
    raise IntakeError(_("The consent text was being changed by someone else: try again."), status=409)


def record_consent(
    *,
    client: Client,
    consent_text: ConsentText,
    method: str,
    ip: str | None,
    collected_by: User | None = None,
) -> Client:
    """Put the client's consent on record: which text, when, from which IP, and how."""
    if method not in Client.ConsentMethod.values:
        raise IntakeError(f"Unknown consent method {method!r}.")
    if consent_text.pk is None or consent_text.studio_id != client.studio_id:
        raise IntakeError(_("This consent text does not belong to the studio."), status=404)
    client.consent_text = consent_text
    client.consent_given_at = timezone.now()
    client.consent_ip = ip or None
    client.consent_method = method
    client.consent_collected_by = acting_user(collected_by) if method == Client.ConsentMethod.STAFF else None
    client.save(
        update_fields=["consent_text", "consent_given_at", "consent_ip", "consent_method", "consent_collected_by"]
    )
    log.info(
        "consent_recorded",
        client_id=client.pk,
        version=consent_text.version,
        language=consent_text.language,
        method=method,
    )
    return client


# --- Photo sets and photos ------------------------------------------------------------------------------------


def create_photo_set(*, client: Client, created_by: User | None) -> PhotoSet:
    photo_set = PhotoSet(
        client=client,
        created_by=acting_user(created_by),
        retention_until=timezone.now() + timedelta(days=settings.INTAKE_RETENTION_DAYS),
    )
    photo_set.save()
    log.info("photo_set_created", photo_set_id=photo_set.pk, client_id=client.pk)
    return photo_set


def _check_open(photo_set: PhotoSet) -> None:
    if photo_set.status == PhotoSet.Status.TRAINED:
        raise IntakeError(
            _("This photo set was used to train a digital double and its photos were deleted: start a new set."),
            status=409,
        )
    if photo_set.status == PhotoSet.Status.PURGED:
        raise IntakeError(
            _("This photo set's photos were deleted at the end of the retention period: start a new set."), status=409
        )


def add_photo(
    *,
    photo_set: PhotoSet,
    upload: UploadedFile | None,
    source: str,
    original_name: str = "",
    rejection: tuple[str, str] | None = None,
) -> Photo:
    """Store one uploaded file in private storage as a PENDING photo (validation decides later), or record a
    REJECTED photo right away: for a file the upload handler refused (`upload=None, rejection=(code, message)`),
    an empty file, or a file whose first bytes say it is no photo (SVG, HTML, PDF, ...): those are never stored.

    Raises IntakeError only for set-level refusals: no consent on record (409), the set is closed (409)."""
    if source not in Photo.Source.values:
        raise ValueError(f"Unknown photo source {source!r}")
    _check_open(photo_set)
    if not photo_set.client.has_consent:
        raise IntakeError(_("The client's consent is not on record yet: record it before adding photos."), status=409)
    name = uploads.safe_file_name(original_name or (getattr(upload, "name", "") or ""))
    photo = Photo(photo_set=photo_set, source=source, original_name=name)
    photo.studio_id = require_studio_id()  # the storage path names the studio; set before the file is saved

    if rejection is None and upload is None:
        rejection = ("empty", "No file was received: choose a photo and try again.")
    if rejection is None and upload is not None:
        size = int(upload.size or 0)
        photo.size_bytes = size
        if size == 0:
            rejection = ("empty", describe_unsupported(b""))
        elif size > settings.INTAKE_MAX_UPLOAD_BYTES:
            rejection = ("too_large", too_large_message())
        else:
            upload.seek(0)
            head = upload.read(SNIFF_BYTES)
            upload.seek(0)
            fmt = sniff_format(head)
            if fmt is None:
                rejection = ("unsupported_type", describe_unsupported(head))
            else:
                photo.detected_format = fmt

    with transaction.atomic():
        if rejection is not None:
            code, message = rejection
            photo.status = Photo.Status.REJECTED
            photo.reason_code = (code or "rejected")[:32]
            photo.reason = (message or "This file can't be used.")[:300]
            photo.validated_at = timezone.now()
            photo.save()
        else:
            assert upload is not None
            photo.save()
            # The stored name's extension follows the bytes, never the client's file name.
            photo.original.save(f"photo.{_EXTENSIONS[photo.detected_format]}", upload, save=False)
            photo.save(update_fields=["original"])
    log.info("photo_added", photo_id=photo.pk, photo_set_id=photo_set.pk, status=photo.status, code=photo.reason_code)
    return photo


_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}


def too_large_message() -> str:
    return uploads.too_large_message(settings.INTAKE_MAX_UPLOAD_BYTES)


#: A queued validation job older than this, when more photos arrive, has the broker checked for its task.
VALIDATION_TASK_CHECK_SECONDS = 30


def request_validation(*, photo_set: PhotoSet, user: User | None = None) -> Job:
    """Enqueue (on commit) the validation job of the set, unless one is already queued or running for it:
    then that one is returned (it picks up photos added while it runs). A queued one that has waited for more
    than VALIDATION_TASK_CHECK_SECONDS has its task sent again if the broker lost it, so new photos never attach
    to a job that nothing will run (issue 13, finding 2); a running one whose worker died is requeued by the
    sweeper, and one that ends while photos are still pending is followed by a new job
    (`revalidate_after_job`)."""

    _check_open(photo_set)
    with transaction.atomic():
        locked = PhotoSet.objects.select_for_update().get(pk=photo_set.pk)
        current = None
        if locked.validation_job_id:
            current = Job.objects.filter(
                pk=locked.validation_job_id, state__in=[Job.State.QUEUED, Job.State.RUNNING]
            ).first()
        if current is not None:
            if queued_for_long(current, seconds=VALIDATION_TASK_CHECK_SECONDS):
                # The job's row is not locked here (a job that ends locks the job, then the set): a duplicate
                # task is harmless, the claim is idempotent.
                resend_if_lost(current, touch=False)
            photo_set.validation_job = current
            return current
        job = enqueue_job(kind=VALIDATE_SET_KIND, payload={"photo_set_id": locked.pk}, user=acting_user(user))
        locked.validation_job = job
        locked.save(update_fields=["validation_job"])
    photo_set.validation_job = job
    log.info("validation_requested", photo_set_id=photo_set.pk, job_id=job.pk)
    return job


def revalidate_after_job(sender: Any, job: Job, **kwargs: Any) -> None:
    """generation's job_finished, in the transaction that ends the job: a validation job that succeeded while
    photos of its set are still pending (uploaded after its last look, while request_validation still saw it
    running) is followed by a new validation job, so no photo waits for ever. The set's row is locked, as
    request_validation locks it, so one of the two always sees the other."""
    if job.kind != VALIDATE_SET_KIND or job.state != Job.State.SUCCEEDED:
        return

    photo_set_id = (job.payload or {}).get("photo_set_id")
    try:
        with transaction.atomic():  # a savepoint: the job's own end never fails because of its follow-up
            locked = (
                PhotoSet.objects.select_for_update()
                .filter(pk=photo_set_id, validation_job_id=job.pk, status=PhotoSet.Status.COLLECTING)
                .first()
            )
            if locked is None or not Photo.objects.filter(photo_set=locked, status=Photo.Status.PENDING).exists():
                return
            follow_up = enqueue_job(kind=VALIDATE_SET_KIND, payload={"photo_set_id": locked.pk}, user=job.created_by)
            locked.validation_job = follow_up
            locked.save(update_fields=["validation_job"])
    except Exception:
        log.exception("validation_follow_up_failed", photo_set_id=photo_set_id, after_job_id=job.pk)
        return
    log.info("validation_followed_up", photo_set_id=locked.pk, job_id=follow_up.pk, after_job_id=job.pk)


# --- Upload links ---------------------------------------------------------------------------------------------


def create_upload_link(*, photo_set: PhotoSet, created_by: User | None, days: int | None = None) -> UploadLink:
    days = settings.INTAKE_UPLOAD_LINK_DAYS if days is None else days
    if not isinstance(days, int) or not 1 <= days <= MAX_LINK_DAYS:
        raise IntakeError(_("An upload link lasts between 1 and %(max)s days.") % {"max": MAX_LINK_DAYS})
    _check_open(photo_set)
    expires_at = timezone.now() + timedelta(days=days)
    link = UploadLink(photo_set=photo_set, created_by=acting_user(created_by), expires_at=expires_at)
    link.save()
    log.info("upload_link_created", upload_link_id=link.pk, photo_set_id=photo_set.pk, days=days)
    return link


def revoke_upload_link(*, link: UploadLink) -> UploadLink:
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        log.info("upload_link_revoked", upload_link_id=link.pk)
    return link


def send_upload_link(*, link: UploadLink, studio: Any, url: str, to: str) -> None:
    """Email the link to the client (in the studio's language for its clients, the studio's contact as Reply-To),
    once the current transaction commits. 409 when the link is revoked or expired."""
    from django.core.mail import EmailMessage
    from django.template.loader import render_to_string
    from django.utils import translation

    if not link.is_usable:
        raise IntakeError(_("This link is revoked or expired: create a new one to send."), status=409)
    with translation.override(client_language_of(studio)):
        body = render_to_string(
            "clients/email/upload_link.txt",
            {"studio": studio, "client": link.photo_set.client, "url": url, "link": link},
        )
        subject = _("%(studio)s: upload your photos") % {"studio": studio.name}
    reply_to = [studio.contact_email] if getattr(studio, "contact_email", "") else None
    message = EmailMessage(subject=subject, body=body, to=[to], reply_to=reply_to)
    transaction.on_commit(message.send)
    log.info("upload_link_sent", upload_link_id=link.pk)


def resolve_upload_link(*, token: str) -> UploadLink:
    """The usable link with this token in the current studio, or UploadLinkError: unknown 404, revoked/expired or
    its set closed 410."""
    token = token or ""
    link = None
    if 8 <= len(token) <= 64:
        link = UploadLink.objects.select_related("photo_set", "photo_set__client").filter(token=token).first()
    if link is None:
        raise UploadLinkError(
            _("Link not found"), _("This upload link doesn't exist. Check that you copied the whole link."), 404
        )
    if link.revoked_at is not None:
        raise UploadLinkError(
            _("Link revoked"),
            _("This upload link has been switched off by the studio. Ask them for a new one."),
            410,
        )
    if link.expires_at <= timezone.now():
        raise UploadLinkError(_("Link expired"), _("This upload link has expired. Ask the studio for a new one."), 410)
    if link.photo_set.status != PhotoSet.Status.COLLECTING:
        raise UploadLinkError(
            _("Link closed"), _("This photo set is complete and no longer takes photos. Thank you!"), 410
        )
    return link


# --- The privacy lifecycle ------------------------------------------------------------------------------------


def _delete_file(field: FieldFile) -> int:
    """Delete a stored file (from storage, not just the reference); 1 if there was one."""
    if not field or not field.name:
        return 0
    field.storage.delete(field.name)
    return 1


_PURGE_KINDS = {
    DeletionReceipt.Kind.AFTER_TRAINING: PhotoSet.Status.TRAINED,
    DeletionReceipt.Kind.RETENTION: PhotoSet.Status.PURGED,
}


def purge_photo_set_files(*, photo_set: PhotoSet, kind: str, performed_by: User | None = None) -> DeletionReceipt:
    """Delete the originals and face crops of every photo of the set FROM STORAGE (the metadata-free thumbnails
    stay, so the verdicts remain understandable), mark the rows, close the set, and write a deletion receipt.

    `kind`: "after_training" (the hook the training job calls; the set becomes TRAINED) or "retention" (the
    retention sweep; PURGED). Photos still pending are closed as rejected. Calling it again deletes what is left
    (normally nothing) and writes another receipt."""
    if kind not in _PURGE_KINDS:
        raise ValueError(f"purge_photo_set_files: unknown kind {kind!r} (after_training or retention)")
    now = timezone.now()
    with transaction.atomic():
        locked = PhotoSet.objects.select_for_update().get(pk=photo_set.pk)
        originals = crops = 0
        photos = list(Photo.objects.filter(photo_set=locked))
        for photo in photos:
            originals += _delete_file(photo.original)
            crops += _delete_file(photo.face_crop)
        Photo.objects.filter(photo_set=locked, status=Photo.Status.PENDING).update(
            status=Photo.Status.REJECTED,
            reason_code="deleted",
            reason="The photo was deleted before it could be checked.",
            validated_at=now,
        )
        Photo.objects.filter(photo_set=locked, files_deleted_at__isnull=True).update(files_deleted_at=now)
        Photo.objects.filter(photo_set=locked).update(original="", face_crop="")
        locked.status = _PURGE_KINDS[kind]
        locked.purged_at = now
        locked.save(update_fields=["status", "purged_at"])
        receipt = DeletionReceipt.objects.create(
            kind=kind,
            client_ref=locked.client_id,
            photo_set_ref=locked.pk,
            performed_by=acting_user(performed_by),
            performed_at=now,
            counts={"photos": len(photos), "originals": originals, "face_crops": crops},
        )
    photo_set.status, photo_set.purged_at = locked.status, locked.purged_at
    log.info("photo_set_purged", photo_set_id=locked.pk, kind=kind, originals=originals, face_crops=crops)
    return receipt


# Later apps (digital doubles, portraits, galleries) plug into the erasure and the export here, e.g. in their
# AppConfig.ready():
#
#     @register_client_erasure_step("doubles")
#     def erase_doubles(client: Client) -> Mapping[str, int]:   # delete rows AND files; return counts
#         ...
#
#     @register_client_export_step("portraits")
#     def export_portraits(client: Client, archive: zipfile.ZipFile) -> None:   # write under "portraits/"
#         ...
#
# Erasure steps run in registration order inside erase_client's transaction, before the client's photo sets and
# the client are deleted; their counts (no personal data) go into the deletion receipt.

ErasureStep = Callable[[Client], Mapping[str, int]]
ExportStep = Callable[[Client, zipfile.ZipFile], None]
_ERASURE_STEPS: dict[str, ErasureStep] = {}
_EXPORT_STEPS: dict[str, ExportStep] = {}


def register_client_erasure_step(name: str) -> Callable[[ErasureStep], ErasureStep]:
    def register(fn: ErasureStep) -> ErasureStep:
        _ERASURE_STEPS[name] = fn
        return fn

    return register


def register_client_export_step(name: str) -> Callable[[ExportStep], ExportStep]:
    def register(fn: ExportStep) -> ExportStep:
        _EXPORT_STEPS[name] = fn
        return fn

    return register


def unregister_client_steps(name: str) -> None:
    """Tests only."""
    _ERASURE_STEPS.pop(name, None)
    _EXPORT_STEPS.pop(name, None)


ERASURE_BLOCKED_MESSAGE = gettext_lazy(
    "This client can't be erased: {records} of theirs must be kept (financial records). Nothing was deleted."
)


def _refuse_erasure_of_kept_records(client: Client) -> None:
    """Before anything is deleted (files can't be restored): refuse with 409 when deleting the client would hit a
    protected row (an order of one of their galleries), rather than fail halfway with a server error."""
    try:
        Collector(using=router.db_for_write(Client)).collect([client])
    except (ProtectedError, RestrictedError) as exc:
        blocking = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        records = " and ".join(sorted({str(obj._meta.verbose_name_plural) for obj in blocking}))
        message = str(ERASURE_BLOCKED_MESSAGE).format(records=records)
        raise ActionRefused(message, code="erasure_blocked", status=409) from None


def erase_client(*, client: Client, performed_by: User | None) -> DeletionReceipt:
    """Delete everything about a client: what other apps registered (doubles, portraits, galleries), every
    photo's files (originals, thumbnails, face crops) from storage, the photos, upload links and sets, then the
    client. Leaves a deletion receipt with ids and counts only (no name, no email)."""
    now = timezone.now()
    with transaction.atomic():
        locked = Client.objects.select_for_update().get(pk=client.pk)
        _refuse_erasure_of_kept_records(locked)
        counts: dict[str, int] = {}
        for name, step in _ERASURE_STEPS.items():
            for key, value in dict(step(locked) or {}).items():
                counts[f"{name}.{key}" if key in counts else key] = int(value)
        sets = list(PhotoSet.objects.filter(client=locked))
        photos = list(Photo.objects.filter(photo_set__client=locked))
        files = 0
        for photo in photos:
            files += _delete_file(photo.original) + _delete_file(photo.thumbnail) + _delete_file(photo.face_crop)
        links = UploadLink.objects.filter(photo_set__client=locked).count()
        UploadLink.objects.filter(photo_set__client=locked).delete()
        Photo.objects.filter(photo_set__client=locked).delete()
        PhotoSet.objects.filter(client=locked).delete()
        client_ref = locked.pk
        locked.delete()
        counts.update(
            {"clients": 1, "photo_sets": len(sets), "photos": len(photos), "files": files, "upload_links": links}
        )
        receipt = DeletionReceipt.objects.create(
            kind=DeletionReceipt.Kind.CLIENT_ERASURE,
            client_ref=client_ref,
            performed_by=acting_user(performed_by),
            performed_at=now,
            counts=counts,
        )
        client_erased.send(sender=Client, client_ref=client_ref, receipt=receipt)
    log.info("client_erased", client_ref=client_ref, counts=counts)
    return receipt


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export_client_zip(*, client: Client) -> tuple[str, IO[bytes]]:
    """A ZIP of everything kept about the client (for data-access requests): `client.json` (details and the
    consent on record, with the text agreed to), `photos.json` (every set and photo with its verdict), and the
    files still kept (originals, thumbnails, face crops). Written to a temporary file, files streamed from
    storage in chunks: never held whole in memory. Returns (file name, binary file positioned at 0); the file is
    deleted when closed."""
    client = Client.objects.select_related("consent_text").get(pk=client.pk)
    details = {
        "id": client.pk,
        "name": client.name,
        "email": client.email,
        "phone": client.phone,
        "notes": client.notes,
        "status": client.status,
        "created_at": _iso(client.created_at),
        "consent": {
            "given_at": _iso(client.consent_given_at),
            "ip": client.consent_ip,
            "method": client.consent_method,
            "collected_by_staff": client.consent_method == Client.ConsentMethod.STAFF,
            "text_version": client.consent_text.version if client.consent_text else None,
            "text": client.consent_text.body if client.consent_text else None,
        }
        if client.has_consent
        else None,
    }
    out = tempfile.TemporaryFile(prefix="client-export-")  # noqa: SIM115 (handed to the caller)
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("client.json", json.dumps(details, indent=2, ensure_ascii=False))
            sets_out = []
            for photo_set in PhotoSet.objects.filter(client=client).order_by("created_at", "pk"):
                photos_out = []
                for photo in Photo.objects.filter(photo_set=photo_set).order_by("uploaded_at", "pk"):
                    files = {}
                    for field in ("original", "thumbnail", "face_crop"):
                        stored: FieldFile = getattr(photo, field)
                        if not stored or not stored.name or not stored.storage.exists(stored.name):
                            continue
                        ext = stored.name.rsplit(".", 1)[-1] if "." in stored.name else "bin"
                        arcname = f"photos/set-{photo_set.pk}/photo-{photo.pk}-{field}.{ext}"
                        with stored.storage.open(stored.name, "rb") as src, archive.open(arcname, "w") as dst:
                            shutil.copyfileobj(src, dst, 1024 * 1024)
                        files[field] = arcname
                    photos_out.append(
                        {
                            "id": photo.pk,
                            "original_name": photo.original_name,
                            "source": photo.source,
                            "status": photo.status,
                            "reason": photo.reason,
                            "reason_code": photo.reason_code,
                            "format": photo.detected_format,
                            "width": photo.width,
                            "height": photo.height,
                            "uploaded_at": _iso(photo.uploaded_at),
                            "validated_at": _iso(photo.validated_at),
                            "files_deleted_at": _iso(photo.files_deleted_at),
                            "files": files,
                        }
                    )
                sets_out.append(
                    {
                        "id": photo_set.pk,
                        "status": photo_set.status,
                        "created_at": _iso(photo_set.created_at),
                        "retention_until": _iso(photo_set.retention_until),
                        "purged_at": _iso(photo_set.purged_at),
                        "photos": photos_out,
                    }
                )
            archive.writestr("photos.json", json.dumps(sets_out, indent=2, ensure_ascii=False))
            for step in _EXPORT_STEPS.values():
                step(client, archive)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    log.info("client_exported", client_id=client.pk)
    return f"client-{client.pk}-export.zip", out
