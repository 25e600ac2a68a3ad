"""The gallery's cart: `{% gallery_cart gallery tiles as cart %}` in the client's gallery page (galleries' templates)
gives whether buying is on, the price sheet, the packages and the portraits still to buy."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def gallery_cart(gallery: Any, tiles: Any = (), any_unbought: bool | None = None) -> dict[str, Any]:
    from billing.views_gallery import cart_context

    return cart_context(gallery=gallery, tiles=tiles, any_unbought=any_unbought)


@register.simple_tag
def gallery_print_offer(gallery: Any, tile: Any) -> dict[str, Any] | None:
    """`{% gallery_print_offer gallery tile as print_offer %}` on a portrait's page: where to order a print of it
    and the lowest price, when the studio takes payments and has a product this portrait has the pixels for."""
    from billing.views_gallery import print_offer

    return print_offer(gallery=gallery, portrait=tile.portrait)
