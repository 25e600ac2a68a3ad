"""axe-core in the browser tests: find (or install, once, with npm) `node_modules/axe-core/axe.min.js` at the
repository root, inject it into a Playwright page and return the violations that matter (impact serious or
critical).

axe-core is a devDependency pinned in package.json / package-lock.json; `npm ci` installs exactly that version."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

_lock = threading.Lock()


def axe_source() -> str:
    """The text of axe.min.js, running `npm ci` (or `npm install` without a lock file) once when it is missing."""
    with _lock:
        if not AXE_JS.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail(
                    f"{AXE_JS.relative_to(ROOT)} is missing and npm is not installed: install Node.js and npm "
                    "(apt-get install npm), or run `npm ci` in the repository root, for the accessibility tests."
                )
            command = "ci" if (ROOT / "package-lock.json").exists() else "install"
            result = subprocess.run(
                [npm, command, "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0 or not AXE_JS.exists():
                pytest.fail(f"`npm {command}` could not install axe-core in {ROOT}:\n{result.stdout}\n{result.stderr}")
        return AXE_JS.read_text(encoding="utf-8")


def serious_violations(page: Page, *, context: Any = None) -> list[dict[str, Any]]:
    """Run axe-core on the page (WCAG 2.x A/AA and best practices) and return the violations of impact serious or
    critical, each as axe reports it (id, impact, help, nodes...)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    results = page.evaluate(
        """async (context) => await window.axe.run(context || document, {resultTypes: ["violations"]})""",
        context,
    )
    return [v for v in results["violations"] if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """A readable summary: one line per violation and its first few nodes."""
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({len(violation['nodes'])})")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node.get('failureSummary', '')[:300]}")
    return "\n".join(lines)
