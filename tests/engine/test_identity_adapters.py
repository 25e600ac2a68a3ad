"""Identity adapters for instant portraits (engine/identity_adapters.py, issue 17): a commercial-use adapter is
enabled as configured, a non-commercial one (its weights or a model it needs) is refused with its licence said
unless the operator declares the licence they hold, and docs/licences.md lists every adapter the engine knows with
its licence and commercial status."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import identity_adapters as ia

DOCS = Path(__file__).resolve().parents[2] / "docs" / "licences.md"
PLUS_FACE = {
    "key": "ip-adapter-plus-face-sd15",
    "source": "h94/IP-Adapter",
    "weight_name": "ip-adapter-plus-face_sd15.safetensors",
    "image_encoder": "h94/IP-Adapter/models/image_encoder",
}


def test_a_commercial_use_adapter_is_enabled_as_configured() -> None:
    config = ia.enable(PLUS_FACE)
    assert config.key == "ip-adapter-plus-face-sd15" and config.adapter.commercial_use
    assert (config.source, config.weight_name, config.declared_licence) == (
        "h94/IP-Adapter",
        "ip-adapter-plus-face_sd15.safetensors",
        "",
    )


@pytest.mark.parametrize("key", [a.key for a in ia.KNOWN if not a.commercial_use])
def test_a_non_commercial_adapter_is_refused_unless_a_licence_is_declared(key: str) -> None:
    adapter = ia.BY_KEY[key]
    entry = {**PLUS_FACE, "key": key}
    with pytest.raises(ia.AdapterRefused) as refused:
        ia.enable(entry)
    message = str(refused.value)
    assert adapter.label in message and "commercial" in message and "declared_licence" in message
    assert "InsightFace" in message  # what it needs that is non-commercial is named
    declared = ia.enable({**entry, "declared_licence": "InsightFace commercial licence no. 123 (2026)"})
    assert declared.declared_licence == "InsightFace commercial licence no. 123 (2026)"


def test_bad_configurations_are_refused_with_what_to_fix() -> None:
    with pytest.raises(ia.AdapterRefused, match="Unknown identity adapter 'photomaker-v9'"):
        ia.enable({**PLUS_FACE, "key": "photomaker-v9"})
    with pytest.raises(ia.AdapterRefused, match="needs image_encoder"):
        ia.enable({**PLUS_FACE, "image_encoder": " "})
    with pytest.raises(ia.AdapterRefused, match="configured twice"):
        ia.enable_all([PLUS_FACE, PLUS_FACE])
    assert [c.key for c in ia.enable_all([PLUS_FACE])] == ["ip-adapter-plus-face-sd15"]


def test_docs_list_every_known_adapter_with_its_licence_and_commercial_status() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines() if line.startswith("| `")}
    for adapter in ia.KNOWN:
        row = rows.get(adapter.key)
        assert row is not None, f"docs/licences.md has no row for {adapter.key}"
        assert adapter.licence in row and ("| yes |" if adapter.commercial_use else "| **no** |") in row
        assert adapter.family in row
