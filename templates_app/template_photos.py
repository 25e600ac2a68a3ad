"""Template photos: the real photo a "Template photo" version puts the client's face into (reference mode
"photo"). Its faces are found with engine.faces (dlib's detector, the intake's), and the soft face mask the
engine regenerates through (engine.masks: the face box grown by the version's mask margin, with a soft edge of
its feather) is drawn over it for the photographer, so they see which pixels will change.

A group template's photo (several people): every face large enough is a slot; `detected_slot_boxes` gives the
`slots` largest faces as slot boxes, left to right (fractions of the photo), for the photographer to start from.

Stored files never change (every stored image has a new random name, templates_app/models.py), so the faces
found in one are remembered per process by the file's name. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

from django.core.files.storage import default_storage
from django.utils.functional import lazy
from django.utils.translation import gettext, ngettext
from PIL import Image

from engine import faces, masks
from engine.portrait import CLIENT_FACES
from templates_app.models import TemplateVersion

#: The smallest face (the larger side of dlib's box, eyebrows to chin) a template photo must show.
PHOTO_MIN_FACE_PX = 96
#: The mask preview's long side (the overlay is drawn on a copy this size at most).
PREVIEW_MAX_SIDE = 1280

Box = masks.Box

NO_FACE_MESSAGE = lazy(
    lambda: (
        gettext(
            "No face was found in the template photo: use a photo where the model's face is clearly visible, "
            "at least %(size)s px across, looking roughly towards the camera."
        )
        % {"size": PHOTO_MIN_FACE_PX}
    ),
    str,
)()


def face_boxes(image: Image.Image) -> tuple[Box, ...]:
    """The face of `image` that is regenerated, as (left, top, right, bottom): the largest one large enough
    (engine.portrait.CLIENT_FACES: other people in the photo keep their faces)."""
    found = faces.detect_faces(image)
    return tuple(
        (box.left, box.top, box.right, box.bottom) for box in found if max(box.width, box.height) >= PHOTO_MIN_FACE_PX
    )[:CLIENT_FACES]


def all_face_boxes(image: Image.Image) -> tuple[Box, ...]:
    """Every face of `image` large enough to be regenerated (at least PHOTO_MIN_FACE_PX), largest first."""
    found = faces.detect_faces(image)
    return tuple(
        (box.left, box.top, box.right, box.bottom) for box in found if max(box.width, box.height) >= PHOTO_MIN_FACE_PX
    )


class TooFewFaces(ValueError):
    """The template photo shows fewer faces than the template has people (the message says both numbers)."""


def slot_boxes_from_faces(
    boxes: Sequence[Box], size: tuple[int, int], slots: int
) -> list[tuple[float, float, float, float]]:
    """The `slots` largest of `boxes` (pixels, largest first) as slot boxes, left to right by their centres:
    (left, top, right, bottom) as fractions of `size`, to 4 decimals, clipped to the picture. Raises TooFewFaces
    when there are fewer faces than slots."""
    if len(boxes) < slots:
        raise TooFewFaces(
            ngettext(
                "Only %(found)s face was found in the template photo (at least %(size)s px across), and the template "
                "has %(slots)s people: use a photo where every face is clearly visible, or enter the boxes yourself.",
                "Only %(found)s faces were found in the template photo (at least %(size)s px across), and the "
                "template has %(slots)s people: use a photo where every face is clearly visible, or enter the boxes "
                "yourself.",
                len(boxes),
            )
            % {"found": len(boxes), "size": PHOTO_MIN_FACE_PX, "slots": slots}
        )
    width, height = size
    chosen = sorted(boxes[:slots], key=lambda b: ((b[0] + b[2]) / 2, b[1]))

    def fraction(value: float, whole: int) -> float:
        return round(min(max(value / whole, 0.0), 1.0), 4)

    return [
        (fraction(left, width), fraction(top, height), fraction(right, width), fraction(bottom, height))
        for left, top, right, bottom in chosen
    ]


def open_stored(name: str) -> Image.Image:
    """A stored image (by its storage name), decoded as RGB."""
    with default_storage.open(name, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image.convert("RGB")


def image_from_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


@functools.lru_cache(maxsize=256)
def _stored_faces(name: str) -> tuple[Box, ...]:
    return face_boxes(open_stored(name))


@functools.lru_cache(maxsize=64)
def _stored_all_faces(name: str) -> tuple[tuple[int, int], tuple[Box, ...]]:
    image = open_stored(name)
    return image.size, all_face_boxes(image)


def detected_slot_boxes(version: TemplateVersion, slots: int) -> list[tuple[float, float, float, float]]:
    """Slot boxes for `slots` people from the faces of a photo-mode version's stored template photo (see
    slot_boxes_from_faces; remembered per stored file). ValueError (a message for people) for a version without
    a template photo; TooFewFaces; OSError when the stored photo can't be read."""
    if version.reference_mode != TemplateVersion.ReferenceMode.PHOTO or not version.has_reference:
        raise ValueError(
            gettext(
                "Faces are found in the saved template photo: choose “Template photo”, upload the photo and save first."
            )
        )
    size, boxes = _stored_all_faces(version.reference_image.name)
    return slot_boxes_from_faces(boxes, size, slots)


def stored_face_boxes(name: str) -> tuple[Box, ...]:
    """The faces of a stored image (by its storage name; remembered, since stored files never change)."""
    return _stored_faces(name)


def photo_faces(version: TemplateVersion) -> tuple[Box, ...] | None:
    """The faces of a photo-mode version's template photo; None for a version of another mode or without one."""
    if version.reference_mode != TemplateVersion.ReferenceMode.PHOTO or not version.has_reference:
        return None
    return stored_face_boxes(version.reference_image.name)


def mask_settings(version: TemplateVersion) -> masks.MaskSettings:
    return masks.MaskSettings(margin=float(version.mask_margin), feather=float(version.mask_feather))


def overlay_png(image: Image.Image, boxes: Sequence[Box], settings: masks.MaskSettings) -> bytes:
    """`image` with the soft face mask of `boxes` drawn over it, as a PNG at most PREVIEW_MAX_SIDE on its long
    side (the boxes are scaled with it: the mask's margin and feather are fractions of the face's size, so the
    preview shows the same region as the full size)."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        boxes = [tuple(round(v * scale) for v in box) for box in boxes]  # type: ignore[misc]
    out = io.BytesIO()
    masks.overlay(image, boxes, settings).save(out, format="PNG", optimize=False)
    return out.getvalue()


def version_mask_png(version: TemplateVersion) -> bytes:
    """The template photo of a photo-mode version with its face mask drawn over it (the photo alone when no
    face is found). ValueError for a version without a template photo."""
    if version.reference_mode != TemplateVersion.ReferenceMode.PHOTO or not version.has_reference:
        raise ValueError("This version has no template photo.")
    name = version.reference_image.name
    return overlay_png(open_stored(name), stored_face_boxes(name), mask_settings(version))
