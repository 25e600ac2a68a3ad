"""Pose references: the reference image of a "Pose (ControlNet)" version (reference mode "pose"). The pose
ControlNet takes an OpenPose skeleton image; the photographer uploads either such a skeleton or a photo of a
person in the pose they want, whose skeleton the engine takes at render time (engine.pose.pose_control_image,
MediaPipe's BlazePose). Here the same detection runs when the image is uploaded, so a photo without a person is
refused on the spot (render_settings), and the photographer sees the skeleton the portraits will follow
(`version_pose_png`, served by templates_app.views.template_version_pose).

Stored files never change (every stored image has a new random name), so what was found in one is remembered per
process by the file's name, as the keypoints (18 points) and the image's size, never the images themselves.
mediapipe is imported by engine.pose inside its functions, on the first detection only; nothing here imports
torch.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

from django.utils.translation import gettext_lazy
from PIL import Image

from engine import pose
from templates_app import template_photos
from templates_app.models import TemplateVersion

PoseNotFound = pose.PoseNotFound

#: The skeleton preview's long side (the same bound as the template photo's mask preview).
PREVIEW_MAX_SIDE = template_photos.PREVIEW_MAX_SIDE

UNREADABLE_MESSAGE = gettext_lazy("The stored reference image can't be read: upload the pose reference again.")


@dataclass(frozen=True)
class PoseReference:
    """What a pose reference image holds. `skeleton_uploaded`: the image already is an OpenPose skeleton (used as
    it is); else `keypoints` are the 18 OpenPose keypoints found in the photo (relative to `size`, None for a
    keypoint not seen), or None with `problem`, the message for the photographer, when no pose was found."""

    size: tuple[int, int]
    skeleton_uploaded: bool = False
    keypoints: tuple[pose.Keypoint | None, ...] | None = None
    problem: str = ""

    @property
    def found(self) -> bool:
        """Whether the portraits can take a pose from this image."""
        return self.skeleton_uploaded or self.keypoints is not None


def pose_reference(image: Image.Image) -> PoseReference:
    """Look at a (clean, upright) reference image: a skeleton is taken as it is; any other image goes through
    engine.pose's detection once (its keypoints are what `engine.pose.pose_skeleton` draws)."""
    if pose.is_pose_skeleton(image):
        return PoseReference(size=image.size, skeleton_uploaded=True)
    try:
        keypoints = pose.detect_keypoints(image)
    except PoseNotFound as exc:
        return PoseReference(size=image.size, problem=str(exc))
    return PoseReference(size=image.size, keypoints=tuple(keypoints))


@functools.lru_cache(maxsize=256)
def _stored_pose(name: str) -> PoseReference:
    return pose_reference(template_photos.open_stored(name))


def stored_pose(name: str) -> PoseReference:
    """The pose reference of a stored image (by its storage name; remembered, since stored files never change).
    OSError when the file can't be read."""
    return _stored_pose(name)


def version_pose(version: TemplateVersion) -> PoseReference | None:
    """The pose reference of a pose-mode version's image; None for a version of another mode or without one."""
    if version.reference_mode != TemplateVersion.ReferenceMode.POSE or not version.has_reference:
        return None
    return stored_pose(version.reference_image.name)


def preview_size(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down to at most PREVIEW_MAX_SIDE on its long side (never up)."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(size))
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale))) if scale < 1.0 else size


def version_pose_png(version: TemplateVersion) -> bytes:
    """The pose a pose-mode version's portraits take, as a PNG at most PREVIEW_MAX_SIDE on its long side: the
    OpenPose skeleton of the person in its reference photo (drawn at the preview's size, strokes scaled with it,
    as engine.pose draws it at any size), or the uploaded skeleton image as it is. ValueError for a version of
    another mode or without an image; PoseNotFound (a ValueError, with the message) when its photo shows no
    person; OSError when the stored file can't be read."""
    found = version_pose(version)
    if found is None:
        raise ValueError("This version has no pose reference.")
    if found.skeleton_uploaded:
        image = template_photos.open_stored(version.reference_image.name)
        size = preview_size(image.size)
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
    elif found.keypoints is not None:
        image = pose.draw_bodypose(preview_size(found.size), found.keypoints)
    else:
        raise PoseNotFound(found.problem)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
