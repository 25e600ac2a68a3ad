"""Page numbers of a gallery's portraits, shared by the client's pages (client_services.Page) and the studio's
(selectors.EntryPage): `number` is 1-based, `size` the page size, `total` how many in all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageNumbers:
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def has_previous(self) -> bool:
        return self.number > 1
