"""The licence check of what the product installs (issue 13, finding 13): used by tests/test_licences.py.

- **Which packages**: the runtime dependencies, i.e. pyproject.toml's ``[project] dependencies`` and the
  ``engine`` extra, resolved transitively through the installed distributions' own requirements
  (:mod:`importlib.metadata`, markers evaluated). The ``test`` extra's tools (pytest, localstripe,
  schemathesis, playwright, ruff, pip-licenses ...) are not part of what the product runs or ships: they are
  listed apart (:func:`test_only_packages`) and not judged.
- **Metadata**: pip-licenses (``python -m piplicenses --format=json --with-license-file --no-license-path
  --from=mixed --with-system``), run as a subprocess of the venv's python, gives each package's declared
  licence (License-Expression, License, classifiers) and the text of its first licence file.
- **Licence files**: pip-licenses reads one file per package; nudenet 3.4.x shows why that is not enough (its
  metadata says MIT, its dist-info carries the AGPL-3.0 text), so *every* licence-like file of each
  distribution (``LICEN[CS]E*``, ``COPYING*``, ``NOTICE*``, ``ThirdPartyNotices*``, ``*_bundled*``, anything in
  a dist-info ``licenses/`` folder) is read as well.
- **Forbidden**: AGPL, GPL (LGPL is fine: a SaaS links psycopg, LGPL-3.0, as a library it does not modify),
  SSPL and the other source-available server licences, and non-commercial licences (CC BY-NC ...), found in the
  metadata or in a licence file's text. A licence file whose text trips a pattern for a good reason (a runtime
  exception, a dual licence the product takes the permissive side of) is a reviewed entry in
  :data:`REVIEWED_FILES`, with the reason; a package whose declared licence is UNKNOWN needs a reviewed entry
  in :data:`REVIEWED_UNKNOWN`.
- **Model files**: every model-like file the runtime packages install must be in
  engine/licences.py's MODELS table.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------------ patterns

#: Declared licences (pip-licenses' "License" column) that are refused. ``\bGPL`` does not match inside LGPL.
METADATA_PATTERNS: dict[str, re.Pattern[str]] = {
    "AGPL": re.compile(r"\bAGPL|Affero", re.I),
    "GPL": re.compile(r"\bGPL|GNU General Public License", re.I),
    "SSPL": re.compile(r"\bSSPL|Server Side Public License", re.I),
    "source-available": re.compile(r"\bBUSL|Business Source License|Commons Clause|Elastic License", re.I),
    "non-commercial": re.compile(r"non-?commercial|\bCC[- ]BY(?:-SA)?-NC\b|\bBY-NC\b", re.I),
}

#: Licence texts that are refused: the licences' own title lines (upper case in the GPL family: the LGPL text
#: names the GPL in mixed case), SPDX-style names, Creative Commons NonCommercial, "non-commercial use only".
TEXT_PATTERNS: dict[str, re.Pattern[str]] = {
    "AGPL": re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE|\bAGPL-?v?3|SPDX-License-Identifier:\s*AGPL"),
    "GPL": re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version\s+\d|(?<![\w-])GPL-?v?[23](?:\.0)?\b"),
    "SSPL": re.compile(r"Server Side Public License", re.I),
    "source-available": re.compile(r"Business Source License|Commons Clause License Condition", re.I),
    "non-commercial": re.compile(
        r"Attribution-NonCommercial|\bNonCommercial\b|\bCC BY-NC\b"
        r"|(?:for|to) non-?commercial (?:use|purposes|research)[^.]{0,40}\bonly\b"
        r"|(?:only|solely|exclusively) for non-?commercial"
        r"|(?:not|never) (?:be )?(?:used )?for (?:any )?commercial (?:use|purposes)"
        r"|excludes? commercial use",
        re.I,
    ),
}

#: File names read as licence texts (anywhere in a distribution) besides a dist-info ``licenses/`` folder.
LICENCE_FILE_NAME = re.compile(
    r"^(?:licen[cs]e|copying|notice|thirdpartynotices|third[-_]party[-_]notices)|licen[cs]es?[-_]?bundled"
    r"|[-_]licen[cs]e(?:\.\w+)?$",
    re.I,
)

#: Model-like files inside installed packages (weights, ONNX graphs, dlib's serialised models).
MODEL_SUFFIXES = {".onnx", ".pt", ".pth", ".safetensors", ".ckpt", ".tflite", ".caffemodel", ".gguf", ".h5"}


# ------------------------------------------------------------------------------------------------ reviews


@dataclass(frozen=True)
class Reviewed:
    """A licence file whose text trips ``kinds`` and was read by a person: ``licence`` is what applies to what
    the product runs, ``why`` says why that is fine (or, with ``open_decision``, why it is a known open item)."""

    package: str
    file_glob: str
    kinds: frozenset[str]
    licence: str
    why: str
    open_decision: bool = False


REVIEWED_FILES: tuple[Reviewed, ...] = (
    Reviewed(
        "numpy",
        "numpy-*.dist-info/licenses/LICENSE.txt",
        frozenset({"GPL"}),
        "BSD-3-Clause (numpy); bundled libgfortran/libquadmath: GPL-3.0-or-later WITH GCC-exception-3.1",
        "The wheel bundles GCC's Fortran runtime, whose GCC Runtime Library Exception lets it be linked into "
        "code under any licence; the GPL-3.0 text is printed for it.",
    ),
    Reviewed(
        "scipy",
        "scipy-*.dist-info/LICENSE.txt",
        frozenset({"GPL"}),
        "BSD-3-Clause (scipy); bundled libgfortran/libquadmath: GPL-3.0-or-later WITH GCC-exception-3.1",
        "Same as numpy: GCC's Fortran runtime under the GCC Runtime Library Exception.",
    ),
    Reviewed(
        "torch",
        "torch-*.dist-info/licenses/third_party/kineto/libkineto/third_party/dynolog/third_party/cpr/test/LICENSE",
        frozenset({"GPL"}),
        "BSD-3-Clause (torch); GPL-3.0 for cpr's test folder only",
        "The file says it covers 'everything inside this directory': cpr's tests (a third party of kineto's "
        "dynolog), which are not in torch's binaries.",
    ),
    Reviewed(
        "torch",
        "torch-*.dist-info/licenses/third_party/*",
        frozenset({"GPL"}),
        "Apache-2.0 WITH LLVM-exception (NVTX, llvm-openmp)",
        "The LLVM exception mentions GPLv2 to allow combining with it; it restricts nothing.",
    ),
    Reviewed(
        "pillow",
        "pillow-*.dist-info/licenses/LICENSE",
        frozenset({"GPL"}),
        "MIT-CMU (Pillow); bundled FreeType under the FreeType License (FTL)",
        "FreeType is dual-licensed FTL or GPLv2; the text names both, the FTL (BSD-like) applies.",
    ),
    Reviewed(
        "pillow-heif",
        "pillow_heif-*.dist-info/licenses/LICENSES_bundled.txt",
        frozenset({"GPL"}),
        "BSD-3-Clause (pillow-heif's code); its binary wheels: GPL-2.0 (bundled x265 HEVC encoder)",
        "OPEN DECISION (issue 13, finding 13): the product only decodes HEIC, but the wheel links libheif with "
        "the GPL-2.0 x265 encoder. GPL-2.0 obligations start on distribution, which a SaaS does not do, yet "
        "rule 7 says no GPL at all. The decode-only alternative pi-heif (LGPL wheels) stopped at 1.4.0 with a "
        "libheif that has the 2026 'HEIF Heist' memory-safety bugs; its fork pi-heif-decoder builds only "
        "CPython 3.13 wheels. See docs/licences.md.",
        open_decision=True,
    ),
)

#: Model-like files inside runtime packages that are not models the product uses: (package, glob) -> why.
IGNORED_MODEL_FILES: dict[tuple[str, str], str] = {
    ("onnxruntime", "onnxruntime/datasets/*.onnx"): "onnxruntime's tiny example graphs (MIT, with onnxruntime), "
    "for its docs; never loaded",
    ("torch", "torch/bin/test_*.pt"): "a test artefact of torch's C++ interpreter (BSD-3-Clause, with torch); "
    "never loaded",
}

#: Packages whose declared licence is UNKNOWN to pip-licenses, with the licence a person verified.
REVIEWED_UNKNOWN: dict[str, str] = {}


# ------------------------------------------------------------------------------------------------ packages


def _closure(requirements: Iterable[str], *, path: Sequence[str] | None = None) -> set[str]:
    """Canonical names of the distributions that ``requirements`` need, transitively, as installed."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    names: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dists = list(md.distributions(name=name, path=list(path) if path is not None else sys.path))
        if not dists:
            continue  # not installed here (an optional platform package): nothing to check
        names.add(name)
        for raw in dists[0].requires or []:
            sub = Requirement(raw)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in extras):
                sub.marker = None
                todo.append(sub)
    return names


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def no_deps_packages() -> list[str]:
    """The requirements the Makefile installs with ``--no-deps`` (``NO_DEPS := 'mediapipe==0.10.21' ...``): their
    declared dependencies can't be installed together with the project's (docs/licences.md), so they are not in
    pyproject.toml, and they ship with the product all the same."""
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("NO_DEPS"):
            return re.findall(r"'([^']+)'", line.split(":=", 1)[1])
    return []


def runtime_packages() -> set[str]:
    """The project's install requirements, its ``engine`` extra and the Makefile's no-deps packages, resolved
    transitively (as installed: a declared dependency that isn't installed is not shipped)."""
    project = _project()
    return _closure([*project["dependencies"], *project["optional-dependencies"]["engine"], *no_deps_packages()])


def test_only_packages() -> set[str]:
    """What the ``test`` extra adds on top of the runtime packages (not shipped, not run by the product)."""
    project = _project()
    own = canonicalize_name(project["name"])
    tools = [r for r in project["optional-dependencies"]["test"] if canonicalize_name(Requirement(r).name) != own]
    return _closure(tools) - runtime_packages()


# ------------------------------------------------------------------------------------------------ checks


@dataclass(frozen=True)
class Finding:
    package: str
    kind: str
    where: str  # "metadata" or the licence file's path inside the distribution
    excerpt: str
    reviewed: Reviewed | None = None

    def __str__(self) -> str:
        return f"{self.package}: {self.kind} in {self.where}: {self.excerpt!r}"


def pip_licenses(packages: Iterable[str], *, extra_path: Sequence[str] = ()) -> list[dict]:
    """pip-licenses' JSON for ``packages`` (run as a subprocess of this python; ``extra_path`` is put in front
    of its sys.path, which is where pip-licenses looks for distributions)."""
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([*extra_path, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [
        sys.executable,
        "-m",
        "piplicenses",
        "--format=json",
        "--with-license-file",
        "--no-license-path",
        "--from=mixed",
        "--with-system",
        "--packages",
        *sorted(packages),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=300)  # noqa: S603
    return json.loads(done.stdout)


def licence_files(dist: md.Distribution) -> list[tuple[str, str]]:
    """(path in the distribution, text) of every licence-like file that ``dist`` installed."""
    found = []
    for file in dist.files or []:
        rel = str(file)
        in_licenses_dir = ".dist-info/licenses/" in rel or ".dist-info/license_files/" in rel
        if not (in_licenses_dir or LICENCE_FILE_NAME.search(file.name)):
            continue
        if file.name.lower().endswith((".py", ".pyc", ".so", ".html", ".js", ".css", ".png", ".svg")):
            continue
        full = Path(str(dist.locate_file(file)))
        if full.is_file():
            found.append((rel, full.read_text(encoding="utf-8", errors="replace")))
    return found


def _excerpt(text: str, match: re.Match[str]) -> str:
    return " ".join(text[max(0, match.start() - 40) : match.end() + 40].split())


def _review_for(package: str, rel: str, kind: str) -> Reviewed | None:
    for review in REVIEWED_FILES:
        if (
            canonicalize_name(review.package) == package
            and kind in review.kinds
            and fnmatch.fnmatch(rel, review.file_glob)
        ):
            return review
    return None


def check_packages(packages: Iterable[str], *, extra_path: Sequence[str] = ()) -> list[Finding]:
    """Every licence finding for ``packages`` (canonical names): the metadata through pip-licenses, and every
    licence file's text. Reviewed file findings carry their review; the caller decides what fails."""
    wanted = {canonicalize_name(p) for p in packages}
    findings: list[Finding] = []
    rows = pip_licenses(wanted, extra_path=extra_path)
    seen = set()
    for row in rows:
        name = canonicalize_name(row["Name"])
        if name not in wanted:
            continue
        seen.add(name)
        declared = row.get("License", "") or "UNKNOWN"
        if declared.strip().upper() == "UNKNOWN" and name not in REVIEWED_UNKNOWN:
            findings.append(Finding(name, "unknown", "metadata", "declared licence is UNKNOWN: review it"))
        for kind, pattern in METADATA_PATTERNS.items():
            match = pattern.search(declared)
            if match:
                findings.append(Finding(name, kind, "metadata", declared))
        text = row.get("LicenseText", "")
        for kind, pattern in TEXT_PATTERNS.items():
            match = pattern.search(text)
            if match and not any(f.package == name and f.kind == kind and f.where != "metadata" for f in findings):
                findings.append(Finding(name, kind, "licence file (pip-licenses)", _excerpt(text, match)))
    missing = wanted - seen
    for name in sorted(missing):
        findings.append(Finding(name, "unknown", "metadata", "pip-licenses did not list this package"))

    search_path = [*extra_path, *sys.path]
    for name in sorted(wanted):
        dists = list(md.distributions(name=name, path=search_path))
        if not dists:
            continue
        for rel, text in licence_files(dists[0]):
            for kind, pattern in TEXT_PATTERNS.items():
                match = pattern.search(text)
                if match:
                    findings.append(Finding(name, kind, rel, _excerpt(text, match), _review_for(name, rel, kind)))
    # A pip-licenses text finding is covered by the same file read here (pip-licenses reads the first licence
    # file, which is one of these): keep it only when no file finding of that kind exists.
    file_kinds = {(f.package, f.kind) for f in findings if f.where not in {"metadata", "licence file (pip-licenses)"}}
    return [f for f in findings if not (f.where == "licence file (pip-licenses)" and (f.package, f.kind) in file_kinds)]


def failures(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that fail the check: all but the reviewed ones."""
    return [f for f in findings if f.reviewed is None]


def model_files_in(packages: Iterable[str]) -> list[tuple[str, str]]:
    """(package, path) of every model-like file the packages installed (test folders and the reviewed
    :data:`IGNORED_MODEL_FILES` left out)."""
    found = []
    for name in sorted(packages):
        dists = list(md.distributions(name=name, path=sys.path))
        if not dists:
            continue
        for file in dists[0].files or []:
            rel = str(file)
            parts = set(Path(rel).parts)
            if parts & {"tests", "test", "testing"}:
                continue
            if "/" not in rel:
                continue  # site-packages' own files (a ``.pth`` there is a path configuration file)
            if any(pkg == name and fnmatch.fnmatch(rel, glob) for pkg, glob in IGNORED_MODEL_FILES):
                continue
            suffix = Path(rel).suffix.lower()
            if suffix in MODEL_SUFFIXES or (suffix == ".dat" and "models" in parts):
                found.append((name, rel))
    return found
