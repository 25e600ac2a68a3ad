"""Why a photo was refused, in the client's language (the self-upload page).

The verdict's own message (Photo.reason, English, with its figures: "... 300 px, at least 400 px needed") is what
the studio's pages and an English client read. A client reading another language gets the message of the reason's
code (Photo.reason_code) from this table, translated (locale/); an unknown code gets a general one."""

from __future__ import annotations

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

CLIENT_REASONS = {
    "no_face": _("We couldn't find a face in this photo. Use a photo where your face is clearly visible."),
    "several_faces": _("Another person's face is in the photo. Use photos where only you can be seen clearly."),
    "face_too_small": _("Your face is too small in this photo. Use a closer or higher-resolution photo."),
    "face_cut_off": _("Your face is cut off by the edge of the photo. Use a photo with your whole head in the frame."),
    "blurry": _("This photo is blurry around the face. Use a sharp, in-focus photo."),
    "badly_exposed": _("Your face is too dark or too bright in this photo. Use a photo with even, soft light."),
    "explicit": _(
        "This photo can't be used because it appears to contain nudity. Choose a photo where you are dressed."
    ),
    "different_person": _("This looks like a different person from the rest of your photos."),
    "near_duplicate": _("Almost the same as another of your photos: use a different shot."),
    "too_large": _("This file is too big: upload a smaller photo."),
    "too_many_pixels": _("This photo is too large: upload a smaller copy."),
    "too_small": _("This photo is too small: upload a larger one."),
    "animated": _("Animated images are not accepted: upload a JPEG, PNG, WebP or HEIC photo."),
    "empty": _("The file is empty: upload a JPEG, PNG, WebP or HEIC photo."),
    "unsupported_type": _("This type of file is not accepted: upload a JPEG, PNG, WebP or HEIC photo."),
    "corrupt": _("This file is damaged and can't be opened: upload the original photo again."),
    "truncated": _("This file is incomplete (cut off during upload or copy): upload it again."),
    "decompression_bomb": _("This file can't be opened safely: upload an ordinary photo."),
}
GENERAL_REASON = _("This photo can't be used: upload another one.")


def reason_for_client(*, code: str, message: str) -> str:
    """The refusal as the client reads it in the active language (the stored message itself in English)."""
    if not message and not code:
        return ""
    if (get_language() or "en").split("-")[0] == "en":
        return message
    return str(CLIENT_REASONS.get(code, GENERAL_REASON))
