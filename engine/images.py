"""Photo intake primitives: sniff, load safely, normalise, strip metadata, perceptual hashes.

Plain Python (Pillow, pillow-heif, numpy, imagehash): no Django here (DESIGN.md rule 2). Every upload is
untrusted (rule 6): whatever goes wrong with a file ends as ``PhotoRejected(code, message)``, with a short
machine code and a message a studio client can read, never as an arbitrary exception.

Typical use::

    photo = load_photo(upload_stream, limits=ImageLimits())
    derivative = encode_clean_jpeg(photo.image, max_side=2048)
    phash = perceptual_hash(photo.image)
"""

from __future__ import annotations

import io
import os
import threading
import warnings
import zlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

from PIL import Image, ImageCms, ImageOps

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_NEAR_DUPLICATE_DISTANCE",
    "SNIFF_BYTES",
    "ImageLimits",
    "LoadedPhoto",
    "PhotoRejected",
    "describe_unsupported",
    "encode_clean",
    "encode_clean_jpeg",
    "hash_distance",
    "load_photo",
    "near_duplicates",
    "perceptual_hash",
    "sniff_format",
]

#: Format names as returned by :func:`sniff_format` (and as Pillow / pillow-heif name them).
ACCEPTED_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})

#: How many leading bytes :func:`sniff_format` / :func:`describe_unsupported` look at.
SNIFF_BYTES: Final = 512

#: See :func:`near_duplicates`.
DEFAULT_NEAR_DUPLICATE_DISTANCE: Final = 6

_ACCEPTED_HUMAN: Final = "a JPEG, PNG, WebP or HEIC photo"

_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_HEIF_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1", b"mif2", b"mif3"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_VIDEO_BRANDS: Final = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"M4A ", b"qt  ", b"3gp4"}
    | {b"3gp5", b"3gp6", b"3g2a", b"dash", b"crx "}
)


# --------------------------------------------------------------------------------------------------------------
# Config and results
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits applied by :func:`load_photo`.

    ``max_bytes``: file size cap (default 25 MB); a stream is never read beyond ``max_bytes + 1`` bytes.
    ``max_pixels``: declared width x height cap (default 50 megapixels, above any phone camera in 2026 but far
    below what would exhaust a worker's memory: an RGB 50 MP image is 150 MB decoded). Checked on the header,
    before any pixel is decoded. A file declaring more than ``bomb_factor`` times ``max_pixels`` is reported as
    a decompression bomb rather than just "too many pixels" (Pillow's own rule uses a factor of 2).
    ``min_side``: the shorter side must be at least this many pixels (default 160, the minimum face size: a
    photo smaller than that cannot hold a usable face).
    ``allowed_formats``: subset of :data:`ACCEPTED_FORMATS`.
    """

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side: int = 160
    bomb_factor: int = 2
    allowed_formats: frozenset[str] = field(default=ACCEPTED_FORMATS)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.min_side < 1 or self.bomb_factor < 1:
            raise ValueError("ImageLimits: max_bytes, max_pixels, min_side and bomb_factor must be positive")
        unknown = set(self.allowed_formats) - ACCEPTED_FORMATS
        if unknown:
            raise ValueError(f"ImageLimits: unknown formats {sorted(unknown)}; known: {sorted(ACCEPTED_FORMATS)}")


class PhotoRejected(Exception):
    """A photo that can't be accepted. ``code`` is a short slug for programs, ``message`` is for people.

    Codes: ``empty``, ``too_large``, ``unsupported_type``, ``animated``, ``corrupt``, ``truncated``,
    ``too_many_pixels``, ``decompression_bomb``, ``too_small``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class LoadedPhoto:
    """A decoded photo: ``image`` is RGB, 8 bits per channel, upright (EXIF orientation applied), sRGB where
    the file carried a usable ICC profile. ``original_size`` is (width, height) as stored in the file, before
    orientation."""

    image: Image.Image
    format: str
    original_size: tuple[int, int]
    original_mode: str
    byte_size: int
    had_exif: bool
    had_gps: bool
    exif_orientation: int

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


# --------------------------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------------------------


def _ftyp_brands(head: bytes) -> tuple[bytes, list[bytes]] | None:
    """(major brand, compatible brands) of an ISO-BMFF ``ftyp`` box at offset 0, or None."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    end = min(len(head), box_size) if box_size >= 16 else min(len(head), 16)
    compatible = [head[i : i + 4] for i in range(16, end - 3, 4)]
    return head[8:12], compatible


def sniff_format(head: bytes) -> str | None:
    """The photo format of a file from its first bytes (at least 12; :data:`SNIFF_BYTES` is plenty), never from
    its name: ``"JPEG"``, ``"PNG"``, ``"WEBP"`` or ``"HEIF"`` (HEIC and other HEIF stills); ``None`` for
    anything else (then :func:`describe_unsupported` says what it is)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(head) >= 12 and head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    brands = _ftyp_brands(head)
    if brands is not None:
        major, compatible = brands
        all_brands = {major, *compatible}
        if major in _HEIC_BRANDS:
            return "HEIF"
        if major in _HEIF_GENERIC_BRANDS:
            # A generic HEIF container: HEVC-coded (HEIC) is what we decode; AVIF inside HEIF is not.
            if all_brands & _AVIF_BRANDS and not all_brands & _HEIC_BRANDS:
                return None
            return "HEIF"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The cut may fall inside a multi-byte character: retry without the last 3 bytes.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def describe_unsupported(head: bytes) -> str:
    """A specific human message for a file :func:`sniff_format` does not accept (what it looks like)."""
    upload = f"upload {_ACCEPTED_HUMAN}"
    if not head:
        return f"The file is empty: {upload}."
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    checks: list[tuple[bool, str]] = [
        (head.startswith((b"GIF87a", b"GIF89a")), f"Animated GIFs and GIFs are not accepted: {upload}."),
        (head.startswith(b"%PDF-"), f"This is a PDF document, not a photo: {upload}."),
        (b"<svg" in stripped[:SNIFF_BYTES], f"This is an SVG drawing, not a photo: {upload}."),
        (
            stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<!--"))
            or b"<html" in stripped[:SNIFF_BYTES],
            f"This is a web page (HTML), not a photo: {upload}.",
        ),
        (stripped.startswith(b"<?xml"), f"This is an XML document, not a photo: {upload}."),
        (
            head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")),
            f"This is a ZIP archive (or an Office document), not a photo: {upload}.",
        ),
        (head.startswith(b"Rar!\x1a\x07"), f"This is a RAR archive, not a photo: {upload}."),
        (head.startswith(b"7z\xbc\xaf\x27\x1c"), f"This is a 7-Zip archive, not a photo: {upload}."),
        (head.startswith(b"\x1f\x8b"), f"This is a gzip-compressed file, not a photo: {upload}."),
        (head.startswith(b"BZh"), f"This is a bzip2-compressed file, not a photo: {upload}."),
        (head.startswith(b"\xfd7zXZ\x00"), f"This is an XZ-compressed file, not a photo: {upload}."),
        (head.startswith(b"\x28\xb5\x2f\xfd"), f"This is a Zstandard-compressed file, not a photo: {upload}."),
        (head[257:262] == b"ustar", f"This is a TAR archive, not a photo: {upload}."),
        (head.startswith(b"\x7fELF"), f"This is a program (executable), not a photo: {upload}."),
        (head.startswith(b"MZ"), f"This is a Windows program (executable), not a photo: {upload}."),
        (
            head[:4] in {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"}
            or head.startswith(b"\xca\xfe\xba\xbe"),
            f"This is a program (executable), not a photo: {upload}.",
        ),
        (head.startswith(b"#!"), f"This is a script, not a photo: {upload}."),
        (head.startswith(b"BM"), f"BMP images are not accepted: {upload}."),
        (
            head.startswith((b"II*\x00", b"MM\x00*")),
            f"TIFF and camera RAW files are not accepted: export the photo as JPEG or {upload}.",
        ),
        (head.startswith(b"8BPS"), f"Photoshop files are not accepted: export the photo as JPEG or {upload}."),
        (head.startswith(b"\x00\x00\x01\x00"), f"Icons are not accepted: {upload}."),
        (
            head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "),
            f"JPEG XL images are not accepted yet: {upload}.",
        ),
        (
            head[0:4] == b"RIFF" and head[8:12] in {b"AVI ", b"WAVE"},
            f"This is a video or audio file, not a photo: {upload}.",
        ),
        (head.startswith(b"ID3") or head.startswith(b"OggS"), f"This is an audio file, not a photo: {upload}."),
    ]
    for matched, message in checks:
        if matched:
            return message
    brands = _ftyp_brands(head)
    if brands is not None:
        major, compatible = brands
        all_brands = {major, *compatible}
        if all_brands & _AVIF_BRANDS:
            return f"AVIF images are not accepted yet: {upload}."
        if major in _VIDEO_BRANDS or all_brands & _VIDEO_BRANDS:
            return f"This is a video, not a photo: {upload}."
    if _looks_like_text(head):
        return f"This is a text file, not a photo: {upload}."
    return f"This file is not a photo we can read: {upload}."


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------

_heif_lock = threading.Lock()
_heif_registered = False


def _ensure_heif_opener() -> None:
    """Register pillow-heif with Pillow once, on first use (no side effect at import time)."""
    global _heif_registered
    if _heif_registered:
        return
    with _heif_lock:
        if not _heif_registered:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True


def _read_limited(source: BinaryIO | bytes | bytearray | memoryview | os.PathLike[str], max_bytes: int) -> bytes:
    """The whole source, or raise ``too_large`` having read at most ``max_bytes + 1`` bytes."""
    too_large = PhotoRejected(
        "too_large", f"The file is larger than {_human_bytes(max_bytes)}: upload a smaller photo."
    )
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > max_bytes:
            raise too_large
        return data
    if isinstance(source, str):
        raise TypeError("load_photo: pass a pathlib.Path, bytes or a binary stream, not a str")
    if isinstance(source, os.PathLike):
        with open(source, "rb") as handle:
            return _read_limited(handle, max_bytes)
    chunks: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0:
        chunk = source.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_large
    return data


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


_FORMAT_HUMAN: Final = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC/HEIF"}

# What Pillow and its decoders raise on damaged input: anything of these while decoding is "corrupt".
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, zlib.error)


def _is_truncation(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "truncated" in text or "premature end" in text or isinstance(exc, EOFError)


def _open_checked(data: bytes, fmt: str, limits: ImageLimits) -> Image.Image:
    """Open (header only), check declared size, then fully decode. Raises PhotoRejected."""
    bomb = PhotoRejected(
        "decompression_bomb",
        "The file declares an enormous picture size for its file size (a decompression bomb): "
        f"upload an ordinary {_ACCEPTED_HUMAN}.",
    )
    human = _FORMAT_HUMAN[fmt]
    with warnings.catch_warnings():
        # Pillow warns (above Image.MAX_IMAGE_PIXELS) or raises (above twice that) while opening. We check the
        # declared size against our own limit below, without touching the process-wide MAX_IMAGE_PIXELS; a
        # warning from Pillow becomes an error here, so it can't leak to the caller's logs.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise bomb from None
        except _DECODE_ERRORS as exc:
            code = "truncated" if _is_truncation(exc) else "corrupt"
            raise PhotoRejected(
                code, f"This {human} file is damaged and can't be opened: upload the original photo again."
            ) from exc

        width, height = image.size
        pixels = width * height
        if width < 1 or height < 1:
            raise PhotoRejected("corrupt", f"This {human} file declares an empty picture: upload another photo.")
        if pixels > limits.max_pixels * limits.bomb_factor:
            raise bomb
        if pixels > limits.max_pixels:
            raise PhotoRejected(
                "too_many_pixels",
                f"The photo is {width}x{height} pixels, more than the {limits.max_pixels / 1e6:g} megapixels "
                "accepted: upload a smaller copy.",
            )
        if min(width, height) < limits.min_side:
            raise PhotoRejected(
                "too_small",
                f"The photo is only {width}x{height} pixels: upload one at least {limits.min_side} pixels "
                "on its shorter side.",
            )
        if fmt in {"PNG", "WEBP"} and getattr(image, "n_frames", 1) > 1:
            raise PhotoRejected("animated", f"Animated images are not accepted: upload {_ACCEPTED_HUMAN}.")

        try:
            if fmt == "PNG":
                # verify() checks every chunk's CRC without decoding; it leaves the image unusable, so reopen.
                image.verify()
                image = Image.open(io.BytesIO(data), formats=[fmt])
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise bomb from None
        except _DECODE_ERRORS as exc:
            if _is_truncation(exc):
                raise PhotoRejected(
                    "truncated",
                    f"This {human} file is incomplete (cut off during upload or copy): upload it again.",
                ) from exc
            raise PhotoRejected(
                "corrupt", f"This {human} file is damaged and can't be read: upload the original photo again."
            ) from exc
    return image


def _exif_facts(image: Image.Image) -> tuple[bool, bool, int]:
    """(had EXIF, had GPS, orientation) of an opened image; damaged EXIF counts as present, no GPS, upright."""
    try:
        exif = image.getexif()
    except Exception:  # damaged EXIF must not reject an otherwise good photo
        return "exif" in image.info, False, 1
    had_exif = bool(exif) or bool(image.info.get("exif"))
    try:
        gps = exif.get_ifd(0x8825)  # GPSInfo
    except Exception:
        gps = {}
    had_gps = bool(gps) or 0x8825 in exif
    orientation = exif.get(0x0112, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    return had_exif, had_gps, orientation


_SRGB_PROFILE: ImageCms.ImageCmsProfile | None = None


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert RGB/CMYK/L pixels from an embedded ICC profile to sRGB RGB; None if the profile is unusable."""
    global _SRGB_PROFILE
    try:
        if _SRGB_PROFILE is None:
            _SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, _SRGB_PROFILE, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    except Exception:  # a broken or mismatched profile: fall back to a plain conversion
        return None
    return converted if isinstance(converted, Image.Image) else None


def _on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB 8-bit: 16-bit scaled (not clipped), alpha composited on white, CMYK/palette/grey
    converted, embedded ICC profile honoured when usable."""
    mode = image.mode
    icc = image.info.get("icc_profile")
    if mode in {"I;16", "I;16L", "I;16B", "I;16N", "I"}:
        import numpy as np

        # 16-bit samples (0..65535; mode "I" from a 16-bit file too) to 8 bits: scale by 257, don't clip.
        scaled = np.asarray(image, dtype=np.float64) / 257.0
        grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
        return grey.convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        return _on_white(image)
    if mode == "1":
        return image.convert("L").convert("RGB")
    if icc and mode in {"RGB", "CMYK", "L"}:
        converted = _to_srgb(image, icc)
        if converted is not None:
            return converted
    return image if mode == "RGB" else image.convert("RGB")


def load_photo(
    source: BinaryIO | bytes | bytearray | memoryview | Path, *, limits: ImageLimits | None = None
) -> LoadedPhoto:
    """Read, check and decode one uploaded photo, or raise :class:`PhotoRejected`.

    Steps: size cap (a stream is read up to ``max_bytes + 1`` bytes, never more), type from the magic bytes,
    header-only open restricted to the sniffed format, declared pixel count checked before decoding
    (``too_many_pixels`` / ``decompression_bomb``; Pillow's bomb warning never leaks), full decode
    (``truncated`` / ``corrupt``; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set), EXIF orientation applied,
    mode normalised to RGB 8-bit. The result holds no reference to the file.
    """
    limits = limits or ImageLimits()
    data = _read_limited(source, limits.max_bytes)
    if not data:
        raise PhotoRejected("empty", f"The file is empty: upload {_ACCEPTED_HUMAN}.")
    head = data[:SNIFF_BYTES]
    fmt = sniff_format(head)
    if fmt is None:
        raise PhotoRejected("unsupported_type", describe_unsupported(head))
    if fmt not in limits.allowed_formats:
        allowed = ", ".join(sorted(_FORMAT_HUMAN[f] for f in limits.allowed_formats))
        raise PhotoRejected("unsupported_type", f"{_FORMAT_HUMAN[fmt]} photos are not accepted here: upload {allowed}.")
    if fmt == "HEIF":
        _ensure_heif_opener()

    image = _open_checked(data, fmt, limits)
    original_size = image.size
    original_mode = image.mode
    had_exif, had_gps, orientation = _exif_facts(image)
    icc = image.info.get("icc_profile")
    try:
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        if icc and upright is not image:
            upright.info["icc_profile"] = icc
        rgb = _to_rgb8(upright)
    except _DECODE_ERRORS as exc:
        raise PhotoRejected(
            "corrupt", f"This {_FORMAT_HUMAN[fmt]} file can't be converted: upload the original photo again."
        ) from exc
    if rgb is image:
        rgb = image.copy()
    rgb.info.clear()
    return LoadedPhoto(
        image=rgb,
        format=fmt,
        original_size=original_size,
        original_mode=original_mode,
        byte_size=len(data),
        had_exif=had_exif,
        had_gps=had_gps,
        exif_orientation=orientation,
    )


# --------------------------------------------------------------------------------------------------------------
# Clean derivatives
# --------------------------------------------------------------------------------------------------------------


def _clean_pixels(image: Image.Image, max_side: int | None) -> Image.Image:
    """A fresh RGB image with the same pixels and an empty ``info`` (no EXIF, XMP, ICC, comments)."""
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be positive")
    rgb = image if image.mode == "RGB" else _to_rgb8(image)
    if max_side is not None and max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        new_size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    clean.info.clear()
    return clean


def encode_clean(image: Image.Image, *, format: str = "JPEG", quality: int = 90, max_side: int | None = None) -> bytes:
    """Encode a derivative with no metadata at all (no EXIF/GPS, XMP, ICC, comments), optionally downscaled
    so that its longer side is at most ``max_side``. ``format``: ``"JPEG"``, ``"PNG"`` or ``"WEBP"``. Pixels
    from :func:`load_photo` are already sRGB, so no profile is needed to display them correctly."""
    fmt = format.upper()
    clean = _clean_pixels(image, max_side)
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, format="JPEG", quality=quality, optimize=True, progressive=True)
    elif fmt == "PNG":
        clean.save(out, format="PNG", optimize=False, compress_level=6)
    elif fmt == "WEBP":
        clean.save(out, format="WEBP", quality=quality, method=4)
    else:
        raise ValueError(f"encode_clean: unsupported format {format!r} (JPEG, PNG or WEBP)")
    return out.getvalue()


def encode_clean_jpeg(image: Image.Image, *, quality: int = 90, max_side: int | None = None) -> bytes:
    """A metadata-free JPEG derivative (see :func:`encode_clean`)."""
    return encode_clean(image, format="JPEG", quality=quality, max_side=max_side)


# --------------------------------------------------------------------------------------------------------------
# Perceptual hashes and near-duplicates
# --------------------------------------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash (imagehash.phash, 8x8) as 16 hex digits. Robust to rescaling, recompression,
    small colour shifts; sensitive to crops, flips and a different shot."""
    import imagehash

    return str(imagehash.phash(image if image.mode in {"RGB", "L"} else _to_rgb8(image)))


def hash_distance(a: str, b: str) -> int:
    """Hamming distance between two hex hashes of the same length (ValueError otherwise)."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths: {a!r}, {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_duplicates(
    hashes: Mapping[K, str], *, max_distance: int = DEFAULT_NEAR_DUPLICATE_DISTANCE
) -> list[tuple[K, K, int]]:
    """Pairs ``(key_a, key_b, distance)`` whose hashes differ in at most ``max_distance`` bits, closest first
    (ties in the mapping's order; each pair once, ``key_a`` before ``key_b`` in the mapping's order).

    Why 6 for a 64-bit pHash: bits of unrelated photos agree by chance, so their distance is about
    Binomial(64, 1/2): mean 32, standard deviation 4; 6 is 6.5 sigmas below the mean (chance below 1e-10 per
    pair, so even the 190 pairs of a 20-photo set never collide by accident). The same photo rescaled,
    recompressed, converted (PNG/JPEG, alpha on white) or lightly re-coloured typically lands at 0-4 bits,
    so 6 catches those with a margin, while two different shots of one sitting (another pose, another crop)
    usually differ by 10 or more. Raise it to ~10 to also catch burst shots; lower it to ~3 to flag only
    re-encodes of the same file.
    """
    if max_distance < 0:
        raise ValueError("max_distance must be >= 0")
    items = list(hashes.items())
    values = [int(h, 16) for _, h in items]
    lengths = {len(h) for _, h in items}
    if len(lengths) > 1:
        raise ValueError("near_duplicates: all hashes must have the same length")
    pairs: list[tuple[K, K, int]] = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            distance = (values[i] ^ values[j]).bit_count()
            if distance <= max_distance:
                pairs.append((items[i][0], items[j][0], distance))
    pairs.sort(key=lambda pair: pair[2])
    return pairs
