"""Prints sold from a client's gallery, fulfilled by the studio (billing.fulfilment).

- The studio's **products** (on its price sheet): a paper size and finish, framed or canvas, a price, the fewest
  pixels per inch it accepts, and optionally an image ratio of its own; plus one shipping price for a print order
  and the countries it ships to. Owners and managers edit them (billing/views_prices.py, the API).
- In the gallery, a portrait is **offered** the products its pixels can fill (:func:`offers_for`: the crop at zoom
  1 must reach the product's `min_dpi`); the client frames the crop on the watermarked preview (zoom and position,
  :func:`resolve_choice` checks them again: a zoom past what the pixels allow is refused) and pays through
  Checkout with the shipping address collected there (billing.orders.start_checkout).
- Once paid, a job (`billing.print_files`, default cluster) makes each line's **print-ready file**
  (engine.prints.print_file: cropped, enlarged to the product's size at 300 dpi, sRGB profile) in private storage,
  and hands the order to its fulfiller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from PIL import Image

from billing import fulfilment, prices
from billing.models import Order, OrderItem, PrintFulfilment, PrintProduct
from engine import prints as engine_prints
from galleries import client_services
from galleries.models import Gallery
from generation.models import Portrait
from tenants.refusals import Refused

log = structlog.get_logger("billing.prints")

PRINT_SIZE = "print"  # OrderItem.size of a print line
PRINT_FILES_KIND = "billing.print_files"
MAX_QUANTITY = 20
MAX_PRINT_LINES = 20
MAX_SIDE_MM = 2000
#: Where prints ship when the studio named no country: the EU, the EEA, the UK, Switzerland, North America,
#: Australia and New Zealand (Checkout needs at least one).
_SHIP_TO = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB CH US CA AU NZ"
DEFAULT_SHIP_TO = tuple(_SHIP_TO.split())


class PrintRefused(Refused):
    """A print product or a print choice refused: `message` says why."""


# --- The studio's products -------------------------------------------------------------------------------------


def _side(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PrintRefused(_("The %(what)s must be a whole number of millimetres.") % {"what": what}) from None
    if not 10 <= number <= MAX_SIDE_MM:
        raise PrintRefused(_("The %(what)s must be between 10 and %(max)s mm.") % {"what": what, "max": MAX_SIDE_MM})
    return number


def _clean_product(
    *, name: str, kind: str, finish: str, width_mm: Any, height_mm: Any, crop_ratio: str, min_dpi: Any, price: Any
) -> dict[str, Any]:
    name, finish, crop_ratio = (name or "").strip(), (finish or "").strip(), (crop_ratio or "").strip()
    if not name or len(name) > 100:
        raise PrintRefused(_("Give the product a name (up to 100 characters)."))
    if kind not in PrintProduct.Kind.values:
        raise PrintRefused(_("Choose paper, framed or canvas."))
    if len(finish) > 60:
        raise PrintRefused(_("The finish is up to 60 characters."))
    try:
        engine_prints.parse_ratio(crop_ratio)
    except ValueError:
        raise PrintRefused(_("The image ratio is two whole numbers like 4:5, or empty for edge to edge.")) from None
    try:
        dpi = int(min_dpi)
    except (TypeError, ValueError):
        dpi = 0
    if not 1 <= dpi <= 600:
        raise PrintRefused(_("The minimum resolution is 1 to 600 pixels per inch."))
    return {
        "name": name,
        "kind": kind,
        "finish": finish,
        "width_mm": _side(width_mm, gettext_lazy("width")),
        "height_mm": _side(height_mm, gettext_lazy("height")),
        "crop_ratio": crop_ratio,
        "min_dpi": dpi,
        "price": prices.checked_price(price, gettext_lazy("print price")),
    }


def add_product(
    *,
    name: str,
    width_mm: Any,
    height_mm: Any,
    price: Any,
    kind: str = PrintProduct.Kind.PAPER,
    finish: str = "",
    crop_ratio: str = "",
    min_dpi: Any = 150,
) -> PrintProduct:
    """A new print product on the studio's price sheet."""
    fields = _clean_product(
        name=name,
        kind=kind,
        finish=finish,
        width_mm=width_mm,
        height_mm=height_mm,
        crop_ratio=crop_ratio,
        min_dpi=min_dpi,
        price=price,
    )
    return PrintProduct.objects.create(**fields)


def update_product(*, product: PrintProduct, **changes: Any) -> PrintProduct:
    """Change a product (orders already placed keep what they were sold: their lines name it as sold)."""
    current = {key: getattr(product, key) for key in ("name", "kind", "finish", "width_mm", "height_mm")}
    current.update({"crop_ratio": product.crop_ratio, "min_dpi": product.min_dpi, "price": product.price})
    current.update({key: value for key, value in changes.items() if key in current})
    for key, value in _clean_product(**current).items():
        setattr(product, key, value)
    product.save()
    return product


def set_product_active(*, product: PrintProduct, active: bool) -> PrintProduct:
    product.is_active = active
    product.save(update_fields=["is_active"])
    return product


def active_products() -> list[PrintProduct]:
    return list(PrintProduct.objects.filter(is_active=True).order_by("price", "id"))


def update_shipping(*, print_shipping: Any, ship_to_countries: str | Iterable[str]) -> Any:
    """The shipping price of a print order (0: free) and where prints ship (country codes, empty: the default
    list)."""
    codes = ship_to_countries.replace(",", " ").split() if isinstance(ship_to_countries, str) else ship_to_countries
    countries = sorted({str(code).strip().upper() for code in codes if str(code).strip()})
    if any(len(code) != 2 or not code.isalpha() for code in countries):
        raise PrintRefused(_("Give the countries as two-letter codes (FR, DE, US…), separated by spaces."))
    try:
        shipping = Decimal(str(print_shipping or "0")).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError):
        raise PrintRefused(_("The shipping price must be a number like 4.90 (0 for free shipping).")) from None
    if not shipping.is_finite() or shipping < 0 or shipping > prices.MAX_PRICE:
        raise PrintRefused(_("The shipping price must be between 0 and %(max)s.") % {"max": prices.MAX_PRICE})
    sheet = prices.price_sheet()
    sheet.print_shipping, sheet.ship_to_countries = shipping, countries
    sheet.save(update_fields=["print_shipping", "ship_to_countries", "updated_at"])
    return sheet


def ship_to(sheet: Any) -> list[str]:
    return list(sheet.ship_to_countries or DEFAULT_SHIP_TO)


def label(product: PrintProduct) -> str:
    """The product as the order's line keeps it: its name, with its size when the name doesn't say it
    ("Lustre print (20×30 cm)")."""
    dims = f"{product.width_mm / 10:g}×{product.height_mm / 10:g}"
    return product.name if dims in product.name.replace(" ", "") else f"{product.name} ({dims} cm)"


# --- Offers and choices in the gallery -------------------------------------------------------------------------


def portrait_size(portrait: Portrait) -> tuple[int, int]:
    """The full-resolution file's size (its recipe says; else the file's header is read)."""
    size = portrait.output_size
    if size and size[0] > 0 and size[1] > 0:
        return int(size[0]), int(size[1])
    with portrait.image.open("rb") as handle, Image.open(handle) as image:
        return image.size


def sheet_for(product: PrintProduct, size: tuple[int, int]) -> engine_prints.Sheet:
    return engine_prints.sheet(
        width_mm=product.width_mm,
        height_mm=product.height_mm,
        crop_ratio=product.crop_ratio,
        landscape=size[0] > size[1],
    )


@dataclass(frozen=True)
class Offer:
    """A product the portrait can be printed on: its sheet in the portrait's orientation, and how far the client
    may zoom in."""

    product: PrintProduct
    sheet: engine_prints.Sheet
    max_zoom: float

    @property
    def file_pixels(self) -> tuple[int, int]:
        return self.sheet.pixels(engine_prints.PRINT_DPI)


def offers_for(*, size: tuple[int, int], products: Sequence[PrintProduct] | None = None) -> list[Offer]:
    """The active products a portrait of `size` has the pixels for (a product needing more is not offered)."""
    offers = []
    for product in active_products() if products is None else products:
        target = sheet_for(product, size)
        zoom = engine_prints.max_zoom(size, target, product.min_dpi)
        if zoom >= 1:
            offers.append(Offer(product=product, sheet=target, max_zoom=zoom))
    return offers


@dataclass(frozen=True)
class PrintChoice:
    """What the client chose on the print page (unchecked values, as posted)."""

    portrait_id: Any
    product_id: Any
    zoom: Any = 1
    x: Any = 0.5
    y: Any = 0.5
    quantity: Any = 1


@dataclass(frozen=True)
class PrintLine:
    portrait: Portrait
    product: PrintProduct
    crop: engine_prints.Crop
    quantity: int


def _number(value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PrintRefused(_("The crop could not be read: frame it again."), 400) from None
    if number != number or not low <= number <= high:  # NaN or out of range
        raise PrintRefused(_("The crop could not be read: frame it again."), 400)
    return number


def resolve_choices(*, gallery: Gallery, choices: Sequence[PrintChoice]) -> list[PrintLine]:
    """Each choice checked: a portrait shown in the gallery, a product it is offered, a crop within what its
    pixels allow, 1 to 20 copies. Refusals name the problem (404: not in this gallery; 409: no longer offered)."""
    if not choices:
        raise PrintRefused(_("Choose a print."), 400)
    if len(choices) > MAX_PRINT_LINES:
        raise PrintRefused(_("Order at most %(count)d prints at a time.") % {"count": MAX_PRINT_LINES}, 400)
    visible = set(client_services.gallery_order(gallery=gallery).portrait_ids)
    products = {p.pk: p for p in active_products()}
    lines = []
    for choice in choices:
        try:
            portrait_id, product_id = int(choice.portrait_id), int(choice.product_id)
        except (TypeError, ValueError):
            raise PrintRefused(_("This portrait is not in your gallery."), 404) from None
        if portrait_id not in visible:
            raise PrintRefused(_("This portrait is not in your gallery."), 404)
        product = products.get(product_id)
        if product is None:
            raise PrintRefused(_("This print is no longer offered. Choose another one."), 409)
        portrait = Portrait.objects.get(pk=portrait_id)
        size = portrait_size(portrait)
        offers = offers_for(size=size, products=[product])
        if not offers:
            raise PrintRefused(_("This portrait hasn't the resolution for this print. Choose a smaller one."), 409)
        zoom = _number(choice.zoom, 1, engine_prints.MAX_ZOOM)
        if zoom > offers[0].max_zoom + 1e-6:
            raise PrintRefused(_("Zoomed in this far, the print would look blurred. Zoom out a little."), 400)
        quantity = _number(choice.quantity, 1, MAX_QUANTITY)
        if quantity != int(quantity):
            raise PrintRefused(_("Order 1 to %(count)d copies.") % {"count": MAX_QUANTITY}, 400)
        crop = engine_prints.crop_for(
            size, offers[0].sheet, zoom=zoom, x=_number(choice.x, 0, 1), y=_number(choice.y, 0, 1)
        )
        lines.append(PrintLine(portrait=portrait, product=product, crop=crop, quantity=int(quantity)))
    return lines


def order_items(
    *, order: Order, lines: Sequence[PrintLine], unit_prices: Sequence[Decimal] | None = None
) -> list[OrderItem]:
    """The order's print lines (unsaved), at each product's price or at `unit_prices` (a sale's)."""
    units = list(unit_prices) if unit_prices is not None else [line.product.price for line in lines]
    return [
        OrderItem(
            order=order,
            portrait=line.portrait,
            size=PRINT_SIZE,
            product=line.product,
            product_name=label(line.product),
            crop=line.crop.as_dict(),
            quantity=line.quantity,
            unit_price=unit,
        )
        for line, unit in zip(lines, units, strict=True)
    ]


def has_prints(order: Order) -> bool:
    return order.items.filter(size=PRINT_SIZE).exists()


# --- After payment: the print-ready files ----------------------------------------------------------------------


def _crop_of(item: OrderItem) -> engine_prints.Crop:
    crop = item.crop or {}
    return engine_prints.Crop(float(crop["x"]), float(crop["y"]), float(crop["w"]), float(crop["h"]))


def make_print_file(*, item: OrderItem) -> OrderItem:
    """The line's print-ready JPEG, stored privately (made again only when missing)."""
    if item.print_file:
        return item
    if item.portrait_id is None or item.product is None:
        raise PrintRefused(_("This print's portrait or product is gone: the file can't be made."), 409)
    portrait = item.portrait
    with portrait.image.open("rb") as handle, Image.open(handle) as image:
        image.load()
        target = sheet_for(item.product, image.size)
        data = engine_prints.print_file(image, _crop_of(item), target)
        item.print_size = list(target.pixels(engine_prints.PRINT_DPI))
    item.print_file.save("print.jpg", ContentFile(data), save=False)
    item.save(update_fields=["print_file", "print_size"])
    return item


def make_print_files(*, order_id: int, progress: Any = None) -> dict[str, Any]:
    """Every print line's file, then the order handed to its fulfiller (the job's work; idempotent)."""
    order = Order.objects.get(pk=order_id)
    items = list(order.items.filter(size=PRINT_SIZE).select_related("portrait", "product").order_by("id"))
    made = 0
    for index, item in enumerate(items):
        if not item.print_file:
            make_print_file(item=item)
            made += 1
        if progress is not None:
            progress(100 * (index + 1) / max(1, len(items)), "Print files")
    record = PrintFulfilment.objects.filter(order=order).first()
    if record is not None and record.files_ready_at is None and record.status != PrintFulfilment.Status.CANCELLED:
        with transaction.atomic():
            fulfilment.place_with_provider(fulfilment=record)
    log.info("print_files_made", order_id=order.pk, made=made, lines=len(items))
    return {"order_id": order.pk, "files": len(items), "made": made}
