"""Tests for engine.images: real fixture photos plus malformed files generated here. No database."""

from __future__ import annotations

import ast
import io
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageFile

from engine.images import (
    ImageLimits,
    PhotoRejected,
    describe_unsupported,
    encode_clean,
    encode_clean_jpeg,
    hash_distance,
    load_photo,
    near_duplicates,
    perceptual_hash,
    sniff_format,
)
from tests.face_fixtures import FACES

needs_faces = pytest.mark.skipif(
    not (FACES / "person_a_01.jpg").is_file(),
    reason=f"face fixtures not found at {FACES} (the shared/ folder beside the checkout)",
)


def fixture_bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_png(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares width x height (8-bit grey); IDAT is a single compressed row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def gradient(size: tuple[int, int] = (400, 300), mode: str = "RGB") -> Image.Image:
    w, h = size
    image = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return image
    other = image.transpose(Image.Transpose.ROTATE_90).resize(size)
    return Image.merge("RGB", (image, other, Image.new("L", size, 90))).convert(mode)


def rejected(source: object, limits: ImageLimits | None = None) -> PhotoRejected:
    with pytest.raises(PhotoRejected) as info:
        load_photo(source, limits=limits or ImageLimits())  # type: ignore[arg-type]
    assert info.value.message and info.value.code
    return info.value


# ---------------------------------------------------------------------------------------------- sniffing


def test_sniff_accepts_the_four_photo_types() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") == "JPEG"
    assert sniff_format(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") == "PNG"
    assert sniff_format(b"RIFF\x24\x00\x00\x00WEBPVP8 ") == "WEBP"
    for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        head = struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + b"mif1heic"
        assert sniff_format(head) == "HEIF", brand


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG drawing"),
        (b'<svg width="10" height="10"><script>alert(1)</script></svg>', "SVG drawing"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "web page (HTML)"),
        (b"GIF89a\x01\x00\x01\x00", "Animated GIFs and GIFs are not accepted"),
        (b"PK\x03\x04\x14\x00", "ZIP archive"),
        (b"Rar!\x1a\x07\x01\x00", "RAR archive"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7-Zip archive"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip"),
        (b"\x7fELF\x02\x01\x01\x00", "executable"),
        (b"MZ\x90\x00\x03\x00", "Windows program"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (struct.pack(">I", 24) + b"ftypavif\x00\x00\x00\x00mif1avif", "AVIF"),
        (struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isomiso2", "video"),
        (b"just some notes, no photo here\n", "text file"),
        (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "not a photo we can read"),
    ],
)
def test_sniff_rejects_everything_else_with_a_specific_message(head: bytes, expected: str) -> None:
    assert sniff_format(head) is None
    assert expected in describe_unsupported(head)


def test_mif1_container_holding_avif_is_not_heif() -> None:
    head = struct.pack(">I", 24) + b"ftypmif1\x00\x00\x00\x00mif1avif"
    assert sniff_format(head) is None
    assert "AVIF" in describe_unsupported(head)


# ---------------------------------------------------------------------------------------------- disguised types


def test_generated_non_photos_are_rejected_whatever_their_name(tmp_path: Path) -> None:
    gif = io.BytesIO()
    frames = [Image.new("P", (200, 200), i) for i in (1, 2, 3)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photo.jpg", b"\xff\xd8\xff\xe0")
    cases = {
        "doc.jpg": (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF document"),
        "pic.jpg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>', "SVG"),
        "page.png": (b"<!doctype html>\n<html><head><title>x</title></head></html>", "HTML"),
        "anim.jpg": (gif.getvalue(), "GIFs are not accepted"),
        "photos.jpg": (archive.getvalue(), "ZIP archive"),
        "selfie.jpg": (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "executable"),
    }
    for name, (payload, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        error = rejected(path)
        assert error.code == "unsupported_type", name
        assert expected in error.message, (name, error.message)


def test_empty_file_is_rejected() -> None:
    assert rejected(b"").code == "empty"


def test_format_outside_allowed_formats_is_rejected() -> None:
    data = encode(gradient(), "PNG")
    error = rejected(data, ImageLimits(allowed_formats=frozenset({"JPEG"})))
    assert error.code == "unsupported_type"
    assert "PNG" in error.message


def test_animated_png_and_webp_are_rejected() -> None:
    frames = [gradient(), gradient().rotate(90)]
    for fmt in ("PNG", "WEBP"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
        assert rejected(data).code == "animated", fmt


# ---------------------------------------------------------------------------------------------- size and pixel caps


@needs_faces
def test_oversize_file_is_rejected() -> None:
    assert rejected(FACES / "person_a_01.jpg", ImageLimits(max_bytes=100_000)).code == "too_large"


class CountingStream(io.RawIOBase):
    """An endless stream of JPEG-looking bytes that counts what was read from it."""

    def __init__(self) -> None:
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size > 0, "the loader must never read an unbounded amount"
        self.consumed += size
        return (b"\xff\xd8\xff" + b"\x00" * size)[:size]


def test_reading_a_stream_stops_at_max_bytes_plus_one() -> None:
    stream = CountingStream()
    limits = ImageLimits(max_bytes=3 * 1024 * 1024 + 7)
    assert rejected(stream, limits).code == "too_large"
    assert stream.consumed == limits.max_bytes + 1


@needs_faces
def test_stream_at_exactly_max_bytes_is_accepted() -> None:
    data = fixture_bytes("person_a_03.jpg")
    photo = load_photo(io.BytesIO(data), limits=ImageLimits(max_bytes=len(data)))
    assert photo.byte_size == len(data)
    assert rejected(io.BytesIO(data), ImageLimits(max_bytes=len(data) - 1)).code == "too_large"


def test_decompression_bomb_is_rejected_before_decoding() -> None:
    bomb = crafted_png(20_000, 20_000)  # 400 megapixels declared in a ~100-byte file
    assert len(bomb) < 2_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rejected(bomb).code == "decompression_bomb"
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillow_bomb_warning_does_not_leak() -> None:
    # 10000x10000 = 100 MP: above Pillow's warning threshold (~89 MP), below its error threshold (~179 MP).
    data = crafted_png(10_000, 10_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = rejected(data, ImageLimits(max_pixels=200_000_000))
    assert error.code == "decompression_bomb"
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_too_many_pixels_is_checked_on_the_header() -> None:
    data = crafted_png(9_000, 6_000)  # 54 MP with a one-row IDAT: decoding it would fail, so the header decides
    error = rejected(data)
    assert error.code == "too_many_pixels"
    assert "9000x6000" in error.message


@needs_faces
def test_too_many_pixels_with_a_small_limit() -> None:
    assert rejected(FACES / "person_a_02.jpg", ImageLimits(max_pixels=500_000)).code == "too_many_pixels"


def test_too_small_is_rejected() -> None:
    assert rejected(encode(gradient((120, 90)), "JPEG")).code == "too_small"


# ---------------------------------------------------------------------------------------------- damaged files


@needs_faces
def test_truncated_jpeg_is_rejected() -> None:
    data = fixture_bytes("person_a_01.jpg")
    assert rejected(data[: len(data) // 2]).code == "truncated"


@needs_faces
def test_truncated_png_is_rejected() -> None:
    data = fixture_bytes("person_a_08_rgba.png")
    assert rejected(data[: len(data) // 2]).code in {"truncated", "corrupt"}


def test_png_with_bad_crc_is_rejected() -> None:
    data = bytearray(encode(gradient(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip a byte inside the compressed pixels: the chunk's CRC no longer matches
    assert rejected(bytes(data)).code == "corrupt"


def test_png_with_garbage_after_the_header_is_rejected() -> None:
    data = encode(gradient(), "PNG")
    garbage = data[:33] + bytes(range(256)) * 8  # signature + IHDR, then noise
    assert rejected(garbage).code in {"corrupt", "truncated"}


def test_loader_never_enables_truncated_loading() -> None:
    load_photo(encode(gradient(), "JPEG"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_multi_picture_jpeg_from_a_phone_loads_its_first_picture() -> None:
    first, second = Image.new("RGB", (400, 300), (200, 0, 0)), Image.new("RGB", (400, 300), (0, 200, 0))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    photo = load_photo(data)
    assert photo.format == "JPEG"
    assert photo.image.getpixel((5, 5)) == pytest.approx((200, 0, 0), abs=4)


def test_str_path_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_photo("photo.jpg")  # type: ignore[arg-type]


def test_header_only_jpeg_is_rejected() -> None:
    assert rejected(b"\xff\xd8\xff\xe0" + b"\x00" * 64).code in {"corrupt", "truncated"}


# ---------------------------------------------------------------------------------------------- colour modes


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    source = Image.new("RGB", (300, 200), (200, 30, 30))
    data = encode(source.convert("CMYK"), "JPEG", quality=95)
    photo = load_photo(data)
    assert photo.original_mode == "CMYK"
    assert photo.image.mode == "RGB"
    r, g, b = photo.image.getpixel((150, 100))  # type: ignore[misc]
    assert r > 150 and g < 90 and b < 90


def test_16_bit_png_is_scaled_not_clipped() -> None:
    grey16 = Image.new("I;16", (300, 200), 32768)  # mid grey in 16 bits
    data = encode(grey16, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    photo = load_photo(data)
    assert photo.image.mode == "RGB"
    assert photo.image.getpixel((10, 10)) == (128, 128, 128)


def test_palette_png_with_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (300, 200), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (0, 0, 150, 200))
    data = encode(image, "PNG", transparency=0)
    photo = load_photo(data)
    assert photo.image.mode == "RGB"
    assert photo.image.getpixel((250, 100)) == (255, 255, 255)  # transparent black -> white
    assert photo.image.getpixel((50, 100)) == (0, 0, 255)


def test_greyscale_and_la_are_converted() -> None:
    grey = load_photo(encode(gradient(mode="L"), "PNG"))
    assert grey.image.mode == "RGB"
    la = Image.merge("LA", (Image.new("L", (300, 200), 0), Image.new("L", (300, 200), 0)))
    assert load_photo(encode(la, "PNG")).image.getpixel((5, 5)) == (255, 255, 255)


@needs_faces
def test_rgba_fixture_is_composited_on_white() -> None:
    photo = load_photo(FACES / "person_a_08_rgba.png")
    assert photo.original_mode == "RGBA"
    assert photo.image.mode == "RGB"
    assert photo.format == "PNG"
    assert photo.size == (626, 1200)


def test_webp_loads() -> None:
    photo = load_photo(encode(gradient(), "WEBP", quality=90))
    assert photo.format == "WEBP"
    assert photo.image.mode == "RGB"


def test_embedded_icc_profile_is_converted_to_srgb() -> None:
    lab_ish = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.new("RGB", (300, 200), (10, 120, 240)), "PNG", icc_profile=lab_ish)
    photo = load_photo(data)
    assert photo.image.getpixel((0, 0)) == pytest.approx((10, 120, 240), abs=2)
    assert "icc_profile" not in photo.image.info


# ---------------------------------------------------------------------------------------------- EXIF


def exif_jpeg(image: Image.Image, *, orientation: int = 1, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_6_is_applied() -> None:
    # A landscape image with a red left half; orientation 6 means "rotate 90 degrees clockwise to display".
    image = Image.new("RGB", (400, 200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 200, 200))
    photo = load_photo(exif_jpeg(image, orientation=6))
    assert photo.exif_orientation == 6
    assert photo.original_size == (400, 200)
    assert photo.size == (200, 400)
    top = photo.image.getpixel((100, 50))
    bottom = photo.image.getpixel((100, 350))
    assert top[0] > 200 and top[2] < 60, top  # type: ignore[index]  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom  # type: ignore[index]


def test_gps_exif_is_detected_and_the_clean_derivative_has_no_metadata() -> None:
    data = exif_jpeg(gradient(), gps=True)
    assert b"Exif" in data
    photo = load_photo(data)
    assert photo.had_exif and photo.had_gps
    for fmt in ("JPEG", "PNG", "WEBP"):
        clean = encode_clean(photo.image, format=fmt)
        assert b"Exif" not in clean and b"TestCam" not in clean, fmt
        reopened = Image.open(io.BytesIO(clean))
        assert not reopened.getexif(), fmt
        assert not reopened.info.get("exif"), fmt
        assert not reopened.info.get("icc_profile"), fmt
        assert not reopened.info.get("xmp"), fmt
    jpeg = Image.open(io.BytesIO(encode_clean_jpeg(photo.image)))
    assert [marker for marker, _ in jpeg.applist if marker != "APP0"] == []


@needs_faces
def test_clean_jpeg_of_a_fixture_with_exif_and_icc_is_stripped_and_downscaled() -> None:
    original = Image.open(FACES / "person_a_01.jpg")
    assert original.getexif() and original.info.get("icc_profile")
    photo = load_photo(FACES / "person_a_01.jpg")
    assert photo.had_exif
    clean = encode_clean_jpeg(photo.image, quality=85, max_side=512)
    reopened = Image.open(io.BytesIO(clean))
    assert max(reopened.size) == 512
    assert reopened.size == (410, 512)
    assert not reopened.getexif()
    assert not reopened.info.get("icc_profile")
    assert b"Exif" not in clean and b"http://ns.adobe.com/xap" not in clean


def test_xmp_is_stripped() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/>SECRET-LOCATION</x:xmpmeta>'
    data = encode(gradient(), "JPEG", xmp=xmp)
    assert b"SECRET-LOCATION" in data
    assert b"SECRET-LOCATION" not in encode_clean_jpeg(load_photo(data).image)


# ---------------------------------------------------------------------------------------------- HEIC


def test_heic_made_with_pillow_heif_loads() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this libheif build has no HEVC encoder, so no HEIC can be made here")
    pillow_heif.register_heif_opener()
    source = Image.new("RGB", (320, 240), (30, 160, 60))
    exif = Image.Exif()
    exif[0x010F] = "Phone"
    data = encode(source, "HEIF", quality=90, exif=exif.tobytes())
    assert sniff_format(data[:64]) == "HEIF"
    photo = load_photo(data)
    assert photo.format == "HEIF"
    assert photo.image.mode == "RGB"
    assert photo.size == (320, 240)
    assert photo.had_exif
    assert photo.image.getpixel((160, 120)) == pytest.approx((30, 160, 60), abs=8)
    assert b"Phone" not in encode_clean_jpeg(photo.image)


def test_truncated_heic_is_rejected() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this libheif build has no HEVC encoder, so no HEIC can be made here")
    pillow_heif.register_heif_opener()
    data = encode(gradient((400, 300)), "HEIF", quality=80)
    assert rejected(data[: len(data) // 2]).code in {"truncated", "corrupt"}


# ---------------------------------------------------------------------------------------------- perceptual hash


@needs_faces
def test_rgba_png_and_jpeg_of_the_same_shot_are_near_duplicates() -> None:
    hashes = {
        name: perceptual_hash(load_photo(FACES / name).image)
        for name in ("person_a_02.jpg", "person_a_08_rgba.png", "person_a_03.jpg", "person_b_01.jpg")
    }
    assert all(len(h) == 16 for h in hashes.values())
    pairs = near_duplicates(hashes)
    assert [(a, b) for a, b, _ in pairs] == [("person_a_02.jpg", "person_a_08_rgba.png")]


@needs_faces
def test_downscaled_recompressed_copy_is_a_near_duplicate() -> None:
    original = load_photo(FACES / "person_a_01.jpg").image
    small = load_photo(encode(original.resize((320, 400), Image.Resampling.LANCZOS), "JPEG", quality=70)).image
    distance = hash_distance(perceptual_hash(original), perceptual_hash(small))
    assert distance <= 6
    # person_a_07_small.jpg is described in SOURCE.md as a downscaled copy of person_a_01, but it is a different
    # shot (landscape head-and-shoulders crop vs a standing portrait): pHash rightly keeps them apart.
    other = perceptual_hash(load_photo(FACES / "person_a_07_small.jpg").image)
    assert hash_distance(perceptual_hash(original), other) > 6


@needs_faces
def test_different_photos_are_not_near_duplicates() -> None:
    names = [p.name for p in sorted(FACES.glob("*")) if p.suffix in {".jpg", ".png"} and "rgba" not in p.name]
    hashes = {name: perceptual_hash(load_photo(FACES / name).image) for name in names}
    assert len(hashes) >= 10
    assert near_duplicates(hashes) == []
    # Unrelated photos sit far from the threshold: the closest pair is still well above 6 bits.
    assert near_duplicates(hashes, max_distance=12) == []


def test_near_duplicates_pairs_and_validation() -> None:
    hashes = {"a": "0000000000000000", "b": "0000000000000003", "c": "ffffffffffffffff", "d": "000000000000000f"}
    assert near_duplicates(hashes) == [("a", "b", 2), ("b", "d", 2), ("a", "d", 4)]
    assert near_duplicates(hashes, max_distance=0) == []
    assert near_duplicates({}) == []
    with pytest.raises(ValueError):
        near_duplicates({"a": "00", "b": "0000"})
    with pytest.raises(ValueError):
        hash_distance("00", "000")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        ImageLimits(max_bytes=0)
    with pytest.raises(ValueError):
        ImageLimits(allowed_formats=frozenset({"GIF"}))
    limits = ImageLimits()
    assert limits.max_bytes == 25 * 1024 * 1024 and limits.max_pixels == 50_000_000
    with pytest.raises(AttributeError):
        limits.max_bytes = 1  # type: ignore[misc]


def test_engine_module_has_no_django_import() -> None:
    source = (Path(__file__).resolve().parents[2] / "engine" / "images.py").read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "django" not in imported
    assert imported <= {"__future__", "io", "os", "threading", "warnings", "zlib", "collections", "dataclasses"} | {
        "pathlib",
        "typing",
        "PIL",
        "numpy",
        "imagehash",
        "pillow_heif",
    }
