"""Sample images of template versions: what a style looks like on a face before anyone spends GPU credits on it.

Samples are the portraits of the designer's previews (generation renders them on a studio's sample double), so
the images come from the app above this one: generation registers a provider from its ready() (templates_app
imports none of it). A page asks for the samples of all its versions at once (`samples_for`: one call, a
bounded number of queries whatever the number of templates). A version with none shows an honest placeholder,
never someone else's picture."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

#: Samples shown per version.
SAMPLES_PER_VERSION = 3


@dataclass(frozen=True)
class Sample:
    url: str  # a signed, expiring link to the thumbnail
    alt: str


SampleProvider = Callable[[HttpRequest, Sequence[Any]], Mapping[int, list[Sample]]]
_providers: dict[str, SampleProvider] = {}


def register_sample_provider(name: str, provider: SampleProvider) -> None:
    """Register (or replace, by name) a provider: (request, versions) -> {version id: [Sample, ...]}."""
    _providers[name] = provider


def samples_for(request: HttpRequest, versions: Sequence[Any]) -> dict[int, list[Sample]]:
    """The samples of each version (at most SAMPLES_PER_VERSION), by version id; [] for a version with none."""
    wanted = [version for version in versions if version is not None and version.pk is not None]
    found: dict[int, list[Sample]] = {version.pk: [] for version in wanted}
    if not wanted:
        return found
    for provider in _providers.values():
        for version_id, samples in provider(request, wanted).items():
            room = SAMPLES_PER_VERSION - len(found.get(version_id, []))
            if room > 0:
                found.setdefault(version_id, []).extend(samples[:room])
    return found
