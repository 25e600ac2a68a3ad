"""Intake benchmark: validating a 20-photo set against a plain Pillow decode-and-resize of the same files.

The project's way: the real `intake.validate_set` job through `jobs.tasks.run_job` (Django, an in-memory
SQLite database, files in a temporary private storage folder): per photo load_photo (sniff, limits, decode,
EXIF orientation, colour modes), a metadata-free thumbnail, dlib face checks and embedding, nudenet safety, the
face crop, the database writes; then the set-level identity and near-duplicate checks. The models are loaded
(and timed) before the measurement. The baseline: `Image.open(path).convert("RGB")` and a 512 px thumbnail of
the same 20 files, in the same process.

The set: 5 variants (original, mirrored, cropped, mirrored crop, tilted 8 degrees) of each of person A's four
photos from ../shared/fixtures/faces, saved as JPEG files.

    .venv/bin/python bench/intake.py [--repeat 3] [--long-side 4032]

`--long-side N` resizes every photo of the set so that its longer side is N pixels (4032: a 12 MP phone
photo), to see how the cost grows with resolution; by default the fixtures keep their own sizes (626-2333 px).

Prints the per-run figures, then one summary line. Target (issue 3): at most 0.25 s per photo on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.face_fixtures import build_set  # noqa: E402  (../shared beside the project, or beside its origin)


def baseline(paths: list[Path]) -> float:
    from PIL import Image

    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        rgb.thumbnail((512, 512))
    return time.perf_counter() - start


def setup_django(workdir: Path) -> None:
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_saas.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def project_way(paths: list[Path]) -> tuple[float, dict]:
    """Wall seconds of the validation job, and its result plus the process's CPU seconds (both threads)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clients import services
    from jobs.models import Job
    from jobs.tasks import run_job
    from tenants.context import tenant_context
    from tenants.models import Studio

    studio = Studio.objects.create(name="Bench", slug=f"bench-{time.monotonic_ns()}")
    with tenant_context(studio):
        client = services.create_client(name="Bench client", created_by=None)
        services.record_consent(
            client=client, consent_text=services.current_consent_text(), method="staff", ip="127.0.0.1"
        )
        photo_set = services.create_photo_set(client=client, created_by=None)
        for path in paths:
            upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")
            services.add_photo(photo_set=photo_set, upload=upload, source="studio")
        job = services.request_validation(photo_set=photo_set)
    start, cpu_start = time.perf_counter(), time.process_time()
    outcome = run_job(job.pk, studio.pk)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    with tenant_context(studio):
        job = Job.objects.get(pk=job.pk)
    if outcome != "succeeded":
        raise SystemExit(f"the validation job ended {outcome}: {job.error}")
    return elapsed, {**(job.result or {}), "cpu_seconds": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-side", type=int, default=None, help="resize every photo to this longer side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        workdir = Path(tmp)
        (workdir / "set").mkdir()
        paths = build_set(workdir / "set", args.long_side)
        setup_django(workdir)

        from clients.validation import analyse_photo, face_rules, intake_limits

        start = time.perf_counter()
        analyse_photo(paths[0], limits=intake_limits(), rules=face_rules())  # loads dlib and nudenet models
        warmup = time.perf_counter() - start

        ours, base, cpus, result = [], [], [], {}
        for run in range(args.repeat):
            base.append(baseline(paths))
            elapsed, result = project_way(paths)
            ours.append(elapsed)
            cpus.append(result.pop("cpu_seconds"))
            print(
                f"run {run + 1}: validation {elapsed:.2f} s ({elapsed / len(paths):.3f} s/photo), "
                f"Pillow decode+resize {base[-1]:.2f} s ({base[-1] / len(paths) * 1000:.1f} ms/photo), "
                f"verdicts {result}"
            )
        per_photo = statistics.median(ours) / len(paths)
        size_note = f" ({args.long_side} px long side)" if args.long_side else ""
        base_per_photo = statistics.median(base) / len(paths)
        print(
            f"bench/intake: {len(paths)} photos{size_note}, {os.cpu_count()} cores, models loaded in {warmup:.1f} s | "
            f"validation {per_photo:.3f} s/photo (target <= 0.25) | Pillow decode+resize "
            f"{base_per_photo * 1000:.1f} ms/photo | ratio x{per_photo / base_per_photo:.1f} | "
            f"CPU {statistics.median(cpus) / len(paths):.3f} s/photo | load {os.getloadavg()[0]:.1f} | "
            f"accepted {result.get('accepted')}/{len(paths)}"
        )


if __name__ == "__main__":
    main()
