"""Training-free identity adapters for instant portraits (issue 17): the ones the engine knows, their licences, and
which an operator may enable.

An instant portrait is rendered from a photo set's accepted photos before the digital double is trained, through
an adapter that turns a face photo into conditioning (diffusers' ``load_ip_adapter`` with its image encoder). The
operator enables one by configuration, like a base model: the adapter's key (one of :data:`KNOWN`), where its
weights are (a local folder or a hub id, and the weight file's name), and its image encoder's folder or hub id.

The product is a commercial service, so :func:`enable` accepts an adapter as it is only when its licence, **and the
licence of every model it needs**, allow commercial use. The IP-Adapter face models trained on CLIP image features
are Apache-2.0 (weights and image encoder). FaceID, InstantID and PuLID compute their identity embeddings with
InsightFace's face-analysis models, which InsightFace releases for non-commercial research only (PuLID's FLUX
version also needs FLUX.1-dev, whose licence is non-commercial): :func:`enable` refuses them unless the operator
declares the licence they hold for what is missing (a commercial InsightFace licence, say), and the declaration is
kept with the configuration for the record. docs/licences.md lists every adapter here with the same words
(tests/engine/test_identity_adapters.py holds them to each other).

Plain Python; loading the adapters (and the instant portraits themselves) is not built yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FAMILIES = ("sd15", "sdxl")


@dataclass(frozen=True)
class KnownAdapter:
    """One adapter the engine knows: what it is, where it comes from, and whether its licence (with every model it
    needs, `needs`) allows commercial use."""

    key: str
    label: str
    family: str
    origin: str
    licence: str
    commercial_use: bool
    needs: str = ""
    note: str = ""


KNOWN: tuple[KnownAdapter, ...] = (
    KnownAdapter(
        key="ip-adapter-sd15",
        label="IP-Adapter (SD 1.5)",
        family="sd15",
        origin="h94/IP-Adapter: models/ip-adapter_sd15.safetensors, image encoder models/image_encoder",
        licence="Apache-2.0 (weights and image encoder)",
        commercial_use=True,
        note="A general image prompt (the CLIP image embedding of the face crop); the face models keep more identity.",
    ),
    KnownAdapter(
        key="ip-adapter-plus-face-sd15",
        label="IP-Adapter Plus Face (SD 1.5)",
        family="sd15",
        origin="h94/IP-Adapter: models/ip-adapter-plus-face_sd15.safetensors, image encoder models/image_encoder",
        licence="Apache-2.0 (weights and image encoder)",
        commercial_use=True,
        note="Conditioned on a cropped face (CLIP image patch features).",
    ),
    KnownAdapter(
        key="ip-adapter-full-face-sd15",
        label="IP-Adapter Full Face (SD 1.5)",
        family="sd15",
        origin="h94/IP-Adapter: models/ip-adapter-full-face_sd15.safetensors, image encoder models/image_encoder",
        licence="Apache-2.0 (weights and image encoder)",
        commercial_use=True,
        note="Conditioned on a cropped face with the background removed (CLIP image features).",
    ),
    KnownAdapter(
        key="ip-adapter-plus-face-sdxl",
        label="IP-Adapter Plus Face (SDXL, ViT-H encoder)",
        family="sdxl",
        origin="h94/IP-Adapter: sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors, image encoder "
        "models/image_encoder",
        licence="Apache-2.0 (weights and image encoder)",
        commercial_use=True,
    ),
    KnownAdapter(
        key="ip-adapter-faceid",
        label="IP-Adapter FaceID (SD 1.5 / SDXL)",
        family="sd15",
        origin="h94/IP-Adapter-FaceID",
        licence="released for research only (its model card)",
        commercial_use=False,
        needs="InsightFace's buffalo_l face-analysis models (non-commercial research only)",
    ),
    KnownAdapter(
        key="instantid",
        label="InstantID (SDXL)",
        family="sdxl",
        origin="InstantX/InstantID (IdentityNet ControlNet and ip-adapter.bin)",
        licence="Apache-2.0 code and weights",
        commercial_use=False,
        needs="InsightFace's antelopev2 face-analysis models (non-commercial research only)",
    ),
    KnownAdapter(
        key="pulid",
        label="PuLID (SDXL; FLUX)",
        family="sdxl",
        origin="ToTheBeginning/PuLID (and guozinan/PuLID weights)",
        licence="Apache-2.0 code and weights",
        commercial_use=False,
        needs="InsightFace's antelopev2 face-analysis models (non-commercial research only); the FLUX version "
        "also FLUX.1-dev (FLUX.1 [dev] Non-Commercial License)",
    ),
)

BY_KEY: dict[str, KnownAdapter] = {adapter.key: adapter for adapter in KNOWN}


class AdapterRefused(ValueError):
    """An adapter configuration that can't be enabled; the message says why and what to do."""


@dataclass(frozen=True)
class AdapterConfig:
    """An enabled adapter: the known adapter, where its weights and image encoder are, and the licence the
    operator declared for what the adapter's own licence doesn't cover (empty when nothing needed declaring)."""

    adapter: KnownAdapter
    source: str
    weight_name: str
    image_encoder: str
    declared_licence: str = ""

    @property
    def key(self) -> str:
        return self.adapter.key


def enable(data: Mapping[str, Any]) -> AdapterConfig:
    """An adapter from configuration (``{"key", "source", "weight_name", "image_encoder", "declared_licence"}``),
    or AdapterRefused: an unknown key, a missing source, weight file or image encoder, or a non-commercial
    adapter without a declared licence."""
    key = str(data.get("key") or "")
    adapter = BY_KEY.get(key)
    if adapter is None:
        raise AdapterRefused(
            f"Unknown identity adapter {key!r}: the engine knows {', '.join(sorted(BY_KEY))} "
            "(engine/identity_adapters.py, docs/licences.md)."
        )
    missing = [name for name in ("source", "weight_name", "image_encoder") if not str(data.get(name) or "").strip()]
    if missing:
        raise AdapterRefused(f"Identity adapter {key!r} needs {', '.join(missing)} (a local folder or a hub id).")
    declared = str(data.get("declared_licence") or "").strip()
    if not adapter.commercial_use and not declared:
        what = f"{adapter.licence}; it needs {adapter.needs}" if adapter.needs else adapter.licence
        raise AdapterRefused(
            f"{adapter.label} can't be enabled for a commercial service: {what}. Enable it only with a licence "
            'that covers commercial use, named in its configuration\'s "declared_licence".'
        )
    return AdapterConfig(
        adapter=adapter,
        source=str(data["source"]).strip(),
        weight_name=str(data["weight_name"]).strip(),
        image_encoder=str(data["image_encoder"]).strip(),
        declared_licence=declared,
    )


def enable_all(entries: Iterable[Mapping[str, Any]]) -> list[AdapterConfig]:
    """Every configured adapter enabled (see :func:`enable`), each key once; the first refusal raises."""
    enabled: list[AdapterConfig] = []
    for entry in entries:
        config = enable(entry)
        if any(other.key == config.key for other in enabled):
            raise AdapterRefused(f"Identity adapter {config.key!r} is configured twice.")
        enabled.append(config)
    return enabled
