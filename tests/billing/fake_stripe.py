"""A small stand-in for the parts of Stripe that localstripe lacks: Connect accounts and account links, Checkout
Sessions with their hosted page, and refunds, in Stripe's documented formats (form-encoded requests with bracketed
keys, JSON objects with `id` and `object`, errors as `{"error": {...}}`). The real `stripe` library talks to it
(its API base pointed here); nothing leaves the machine.

- Every request is recorded (`requests`: method, path, parsed form, `Idempotency-Key`, account header).
  A POST with an `Idempotency-Key` seen before gets the very same object back, as Stripe does (and a 400 when the
  parameters differ).
- The stand-in hosted checkout page (`GET /pay/<session id>`) shows the amount and a "Pay" button; its POST
  completes the session (a payment intent and a charge), sends a signed `checkout.session.completed` and
  redirects to `success_url` with `{CHECKOUT_SESSION_ID}` substituted.
- The stand-in onboarding page (`GET /onboard/<account id>`) has a "Submit" button; its POST marks the account
  `details_submitted` and `charges_enabled` and sends a signed `account.updated` Connect event.
- `POST /v1/refunds` refunds a payment intent's charge and sends `charge.refunded`.
- Coupons and promotion codes (`POST /v1/coupons`, `POST /v1/promotion_codes` with `promotion[coupon]`, `GET`
  them, `POST /v1/promotion_codes/<id>` to turn one off), and Checkout Sessions with `discounts` (one promotion
  code or coupon): `amount_subtotal`, `total_details.amount_discount` and `amount_total` (subtotal − discount +
  shipping, computed in `_amounts`). The discount is computed as billing.coupons documents it (percent off the
  subtotal rounded half up to the minor unit; amount off capped at the subtotal), and refused with a 400
  `invalid_request_error` as Stripe does when the coupon or code has reached its `max_redemptions`, is past its
  `redeem_by`/`expires_at`, is inactive, or the subtotal is under the code's `restrictions.minimum_amount`. A
  completed session counts a redemption (`times_redeemed`) on both.

Webhooks are signed with the scheme of the `stripe` library (`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<payload>">`). With `webhook_url` set they are POSTed there (Connect events to `connect_webhook_url`);
without it they queue in `outbox` for the test to deliver itself (a test client in the test's own thread and
transaction). `deliveries` records every POST made and its status.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

WEBHOOK_SECRET = "whsec_test_fake_platform"
EMPTY_ADDRESS = {"line1": None, "line2": None, "postal_code": None, "city": None, "state": None, "country": None}
DEFAULT_SHIPPING = {
    "name": "Ada Lovelace",
    "address": {"line1": "12 Rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"},
}
CONNECT_WEBHOOK_SECRET = "whsec_test_fake_connect"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header of this payload, as Stripe makes it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding to nested dicts and lists: `a[b][0][c]=1` → {"a": {"b": [{"c": "1"}]}}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node: Any = root
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    """Dicts whose keys are all digits become lists (in index order)."""
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Response:
    body: str
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    account: str | None


@dataclass
class Delivery:
    type: str
    event_id: str
    status: int


@dataclass
class Outgoing:
    """A webhook waiting in the outbox: its body, signature header, and which endpoint it is for."""

    event: dict[str, Any]
    body: bytes
    signature: str
    connect: bool


@dataclass
class FakeStripe:
    webhook_url: str | None = None
    connect_webhook_url: str | None = None
    webhook_delay: float = 0.0  # seconds before a webhook is POSTed (in a thread): the client may come back first
    webhook_secret: str = WEBHOOK_SECRET
    connect_webhook_secret: str = CONNECT_WEBHOOK_SECRET
    requests: list[Recorded] = field(default_factory=list)
    outbox: list[Outgoing] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    accounts: dict[str, dict] = field(default_factory=dict)
    sessions: dict[str, dict] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    coupons: dict[str, dict] = field(default_factory=dict)
    promotion_codes: dict[str, dict] = field(default_factory=dict)
    base_url: str = ""
    _idempotent: dict[str, tuple[dict, dict]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    # --- Helpers ---------------------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._counter):04d}{secrets.token_hex(6)}"

    def recorded(self, path: str, method: str = "POST") -> list[Recorded]:
        return [r for r in self.requests if r.path == path and r.method == method]

    def event(self, type_: str, obj: dict, *, account: str | None = None) -> dict[str, Any]:
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        if account:
            event["account"] = account
        return event

    def send(self, event: dict[str, Any], *, connect: bool = False) -> Outgoing:
        """Sign the event and POST it to its endpoint, or queue it in the outbox when there is none."""
        body = json.dumps(event).encode()
        secret = self.connect_webhook_secret if connect else self.webhook_secret
        out = Outgoing(event=event, body=body, signature=sign(body, secret), connect=connect)
        url = self.connect_webhook_url if connect else self.webhook_url
        if not url:
            self.outbox.append(out)
            return out
        if self.webhook_delay > 0:
            timer = threading.Timer(self.webhook_delay, self.post, args=(out, url))
            timer.daemon = True
            timer.start()
        else:
            self.post(out, url)
        return out

    def post(self, out: Outgoing, url: str) -> int:
        request = urllib.request.Request(
            url,
            data=out.body,
            method="POST",
            headers={"Content-Type": "application/json", "Stripe-Signature": out.signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        self.deliveries.append(Delivery(out.event["type"], out.event["id"], status))
        return status

    # --- Objects ---------------------------------------------------------------------------------------------

    def _account(self, params: dict) -> dict:
        account_id = self.new_id("acct")
        account = {
            "id": account_id,
            "object": "account",
            "type": params.get("type", "express"),
            "country": params.get("country", "DE"),
            "email": params.get("email"),
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "capabilities": {k: "inactive" for k in (params.get("capabilities") or {})},
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.accounts[account_id] = account
        return account

    def _account_link(self, params: dict) -> dict:
        account_id = params.get("account", "")
        if account_id not in self.accounts:
            raise ApiError(400, f"No such account: '{account_id}'", param="account")
        return {
            "object": "account_link",
            "created": int(time.time()),
            "expires_at": int(time.time()) + 300,
            "url": f"{self.base_url}/onboard/{account_id}?"
            + "&".join(f"{k}={v}" for k, v in (("return", params.get("return_url", "")),)),
            "_refresh_url": params.get("refresh_url"),
            "_return_url": params.get("return_url"),
        }

    def _session(self, params: dict) -> dict:
        if params.get("mode") != "payment":
            raise ApiError(400, "Only mode=payment is supported by the fake.", param="mode")
        items = params.get("line_items") or []
        if not items:
            raise ApiError(400, "Missing required param: line_items.", param="line_items")
        subtotal = 0
        currency = None
        for item in items:
            data = item.get("price_data") or {}
            subtotal += int(data["unit_amount"]) * int(item.get("quantity", 1))
            currency = data.get("currency")
        discount = self._session_discount(params.get("discounts") or [], subtotal=subtotal, currency=currency)
        for key in ("success_url", "cancel_url"):
            if not params.get(key):
                raise ApiError(400, f"Missing required param: {key}.", param=key)
        shipping_rate = self._shipping_rate(params, currency)
        shipping_amount = int(shipping_rate["fixed_amount"]["amount"]) if shipping_rate else 0
        amounts = self._amounts(subtotal=subtotal, discount=discount, shipping=shipping_amount)
        session_id = "cs_test_" + secrets.token_hex(12)
        pi_data = params.get("payment_intent_data") or {}
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            **amounts,
            "discounts": [discount[0]] if discount else [],
            "shipping_address_collection": params.get("shipping_address_collection"),
            "shipping_cost": {"amount_total": shipping_amount, "shipping_rate": shipping_rate["id"]}
            if shipping_rate
            else None,
            "shipping_details": None,
            "collected_information": None,
            "currency": currency,
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "metadata": params.get("metadata") or {},
            "client_reference_id": params.get("client_reference_id"),
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "payment_intent": None,
            "url": f"{self.base_url}/pay/{session_id}",
            "expires_at": int(time.time()) + 24 * 3600,
            "created": int(time.time()),
            "livemode": False,
            "_line_items": items,
            "_payment_intent_data": pi_data,
        }
        self.sessions[session_id] = session
        return session

    def _shipping_rate(self, params: dict, currency: str | None) -> dict | None:
        """The session's shipping rate (`shipping_options[0].shipping_rate_data`, fixed amount), as Stripe checks
        it: shipping options need `shipping_address_collection` with allowed countries."""
        options = params.get("shipping_options") or []
        collection = params.get("shipping_address_collection")
        if collection is not None and not (collection.get("allowed_countries") or []):
            raise ApiError(400, "Missing required param: allowed_countries.", param="shipping_address_collection")
        if not options:
            return None
        if collection is None:
            raise ApiError(400, "shipping_options requires shipping_address_collection.", param="shipping_options")
        data = options[0].get("shipping_rate_data") or {}
        fixed = data.get("fixed_amount") or {}
        if data.get("type") != "fixed_amount" or fixed.get("currency") != currency or not data.get("display_name"):
            raise ApiError(400, "Invalid shipping_rate_data.", param="shipping_options")
        return {
            "id": self.new_id("shr"),
            "object": "shipping_rate",
            "display_name": data["display_name"],
            "fixed_amount": {"amount": int(fixed["amount"]), "currency": currency},
        }

    def _amounts(self, *, subtotal: int, discount: tuple[dict, int] | None, shipping: int = 0) -> dict[str, Any]:
        """The session's amounts, computed in this one place: the line items' subtotal, less the discount, plus
        shipping (Stripe's discounts never apply to shipping)."""
        off = discount[1] if discount else 0
        return {
            "amount_subtotal": subtotal,
            "amount_total": subtotal - off + shipping,
            "total_details": {"amount_discount": off, "amount_shipping": shipping, "amount_tax": 0},
        }

    # --- Coupons and promotion codes -----------------------------------------------------------------------

    def _coupon(self, params: dict) -> dict:
        percent, amount = params.get("percent_off"), params.get("amount_off")
        if (percent is None) == (amount is None):
            raise ApiError(400, "You must pass exactly one of percent_off or amount_off.", param="percent_off")
        if amount is not None and not params.get("currency"):
            raise ApiError(400, "You must pass currency when passing amount_off.", param="currency")
        if percent is not None and not (0 < float(percent) <= 100):
            raise ApiError(400, "percent_off must be between 0 and 100.", param="percent_off")
        coupon_id = params.get("id") or self.new_id("co")
        if coupon_id in self.coupons:
            raise ApiError(400, "Coupon already exists.", param="id")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": int(amount) if amount is not None else None,
            "currency": params.get("currency") if amount is not None else None,
            "percent_off": float(percent) if percent is not None else None,
            "duration": params.get("duration", "once"),
            "max_redemptions": int(params["max_redemptions"]) if params.get("max_redemptions") else None,
            "redeem_by": int(params["redeem_by"]) if params.get("redeem_by") else None,
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "times_redeemed": 0,
            "valid": True,
            "created": int(time.time()),
            "livemode": False,
            "_percent": str(percent) if percent is not None else None,  # exact, as sent
        }
        self.coupons[coupon_id] = coupon
        return coupon

    def _promotion_code(self, params: dict) -> dict:
        promotion = params.get("promotion") or {}
        coupon_id = promotion.get("coupon") or params.get("coupon") or ""
        if coupon_id not in self.coupons:
            raise ApiError(400, f"No such coupon: '{coupon_id}'", param="promotion[coupon]")
        code = params.get("code") or secrets.token_hex(4).upper()
        if not re.fullmatch(r"[A-Za-z0-9-]+", code):
            raise ApiError(400, "Invalid promotion code: use letters, digits and dashes.", param="code")
        if any(p["active"] and p["code"].upper() == code.upper() for p in self.promotion_codes.values()):
            raise ApiError(400, "An active promotion code with this code already exists.", param="code")
        restrictions = params.get("restrictions") or {}
        minimum = restrictions.get("minimum_amount")
        if minimum is not None and not restrictions.get("minimum_amount_currency"):
            raise ApiError(400, "minimum_amount_currency is required with minimum_amount.", param="restrictions")
        promo = {
            "id": self.new_id("promo"),
            "object": "promotion_code",
            "active": str(params.get("active", "true")).lower() != "false",
            "code": code,
            "promotion": {"type": "coupon", "coupon": coupon_id},
            "max_redemptions": int(params["max_redemptions"]) if params.get("max_redemptions") else None,
            "expires_at": int(params["expires_at"]) if params.get("expires_at") else None,
            "restrictions": {
                "first_time_transaction": False,
                "minimum_amount": int(minimum) if minimum is not None else None,
                "minimum_amount_currency": restrictions.get("minimum_amount_currency"),
            },
            "metadata": params.get("metadata") or {},
            "times_redeemed": 0,
            "created": int(time.time()),
            "livemode": False,
        }
        self.promotion_codes[promo["id"]] = promo
        return promo

    def _update_promotion_code(self, promo_id: str, params: dict) -> dict:
        promo = self._get(self.promotion_codes, promo_id, "promotion_code")
        if "active" in params:
            promo["active"] = str(params["active"]).lower() == "true"
        if "metadata" in params:
            promo["metadata"] = params["metadata"] or {}
        return promo

    def _redeemable(self, coupon: dict) -> None:
        now = int(time.time())
        if not coupon["valid"] or (coupon["redeem_by"] and coupon["redeem_by"] <= now):
            raise ApiError(400, f"Coupon '{coupon['id']}' is no longer valid.", param="discounts")
        if coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
            raise ApiError(400, f"Coupon '{coupon['id']}' has reached its max_redemptions.", param="discounts")

    def _session_discount(self, discounts: list, *, subtotal: int, currency: str | None) -> tuple[dict, int] | None:
        """A session's one discount (a promotion code or a coupon), checked as Stripe checks it, and its amount:
        percent off the subtotal rounded half up to the minor unit, or the amount off capped at the subtotal."""
        if not discounts:
            return None
        if len(discounts) > 1:
            raise ApiError(400, "You may only specify one discount.", param="discounts")
        entry = discounts[0] or {}
        promo = None
        if entry.get("promotion_code"):
            promo = self.promotion_codes.get(entry["promotion_code"])
            if promo is None:
                raise ApiError(400, f"No such promotion code: '{entry['promotion_code']}'", param="discounts")
            now = int(time.time())
            if not promo["active"] or (promo["expires_at"] and promo["expires_at"] <= now):
                raise ApiError(400, "This promotion code is inactive or has expired.", param="discounts")
            if promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
                raise ApiError(400, "This promotion code has reached its max_redemptions.", param="discounts")
            minimum = promo["restrictions"]["minimum_amount"]
            if minimum is not None and (
                subtotal < minimum or promo["restrictions"]["minimum_amount_currency"] != currency
            ):
                raise ApiError(400, "This promotion code requires a higher minimum amount.", param="discounts")
            coupon = self.coupons[promo["promotion"]["coupon"]]
        else:
            coupon = self.coupons.get(entry.get("coupon") or "")
            if coupon is None:
                raise ApiError(400, f"No such coupon: '{entry.get('coupon')}'", param="discounts")
        self._redeemable(coupon)
        if coupon["amount_off"] is not None:
            if coupon["currency"] != currency:
                raise ApiError(400, "The coupon's currency doesn't match the session's.", param="discounts")
            off = min(coupon["amount_off"], subtotal)
        else:
            exact = Decimal(subtotal) * Decimal(coupon["_percent"]) / 100
            off = int(exact.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
        applied = {"coupon": coupon["id"], "promotion_code": promo["id"] if promo else None}
        return applied, off

    def _redeem(self, session: dict) -> None:
        """A completed session redeems its discount: times_redeemed counts it (coupon and promotion code)."""
        for applied in session.get("discounts") or []:
            coupon = self.coupons.get(applied.get("coupon") or "")
            if coupon is not None:
                coupon["times_redeemed"] += 1
                if coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
                    coupon["valid"] = False
            promo = self.promotion_codes.get(applied.get("promotion_code") or "")
            if promo is not None:
                promo["times_redeemed"] += 1

    def public(self, obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def complete(self, session_id: str, email: str = "ada@example.com", shipping: dict[str, Any] | None = None) -> dict:
        """What the hosted page's "Pay" does: the payment intent and its charge, the session complete, the
        `checkout.session.completed` event sent. Returns the session. A session collecting a shipping address
        needs `shipping` ({"name", "address": {line1, city, postal_code, country…}}) in an allowed country."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                return session
            collection = session.get("shipping_address_collection")
            if collection is not None:
                shipping = shipping or DEFAULT_SHIPPING
                country = (shipping.get("address") or {}).get("country")
                if country not in collection["allowed_countries"]:
                    raise ApiError(400, f"Shipping to {country} is not allowed.", param="shipping")
                details = {"name": shipping.get("name"), "address": {**EMPTY_ADDRESS, **shipping["address"]}}
                session.update(shipping_details=details, collected_information={"shipping_details": details})
            pi_data = session["_payment_intent_data"]
            pi_id = self.new_id("pi")
            charge_id = self.new_id("ch")
            self.payment_intents[pi_id] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "currency": session["currency"],
                "status": "succeeded",
                "latest_charge": charge_id,
                "application_fee_amount": int(pi_data.get("application_fee_amount") or 0) or None,
                "transfer_data": pi_data.get("transfer_data"),
                "metadata": pi_data.get("metadata") or {},
                "_charge": {
                    "id": charge_id,
                    "object": "charge",
                    "amount": session["amount_total"],
                    "amount_refunded": 0,
                    "currency": session["currency"],
                    "payment_intent": pi_id,
                    "refunded": False,
                    "paid": True,
                    "status": "succeeded",
                    "metadata": pi_data.get("metadata") or {},
                    "transfer_data": pi_data.get("transfer_data"),
                },
            }
            self._redeem(session)
            session.update(
                status="complete",
                payment_status="paid",
                payment_intent=pi_id,
                customer_details={"email": session.get("customer_email") or email, "name": None},
            )
            event = self.event("checkout.session.completed", self.public(session))
        self.send(event)
        return session

    def expire(self, session_id: str) -> dict:
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "open":
                session["status"] = "expired"
            event = self.event("checkout.session.expired", self.public(session))
        self.send(event)
        return session

    def _refund(self, params: dict) -> dict:
        pi_id = params.get("payment_intent") or ""
        intent = self.payment_intents.get(pi_id)
        if intent is None:
            raise ApiError(400, f"No such payment_intent: '{pi_id}'", param="payment_intent")
        charge = intent["_charge"]
        amount = int(params.get("amount") or charge["amount"] - charge["amount_refunded"])
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": pi_id,
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._after = (self.event("charge.refunded", dict(charge)), False)
        return refund

    def onboard(self, account_id: str) -> dict:
        with self._lock:
            account = self.accounts[account_id]
            account.update(details_submitted=True, charges_enabled=True, payouts_enabled=True)
            event = self.event("account.updated", dict(account), account=account_id)
        self.send(event, connect=True)
        return account

    # --- HTTP ------------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            return self.dispatch(request)
        except ApiError as exc:
            response = _json({"error": {"type": "invalid_request_error", "message": exc.message, "param": exc.param}})
            response.status = exc.status
            return response

    def dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/v1/"):
            return self.api(request, path)
        if m := re.fullmatch(r"/pay/(cs_test_\w+)", path):
            return self.hosted_checkout(request, m.group(1))
        if m := re.fullmatch(r"/onboard/(acct_\w+)", path):
            return self.hosted_onboarding(request, m.group(1))
        raise ApiError(404, f"Unrecognized request URL ({request.method}: {path}).")

    def api(self, request: Request, path: str) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            raise ApiError(401, "You did not provide an API key.")
        pairs = parse_qsl(request.body.decode(), keep_blank_values=True)
        if request.method == "GET":
            pairs = list(request.query.items())
        params = parse_form(pairs)
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            self.requests.append(Recorded(request.method, path, params, key, request.headers.get("Stripe-Account")))
            if request.method == "POST" and key:
                seen = self._idempotent.get(key)
                if seen is not None:
                    if seen[0] != params:
                        raise ApiError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            "first used with.",
                        )
                    return _json(seen[1], replay=True)
            self._after: tuple[dict, bool] | None = None
            obj = self.route(request.method, path, params)
            if request.method == "POST" and key:
                self._idempotent[key] = (params, obj)
            after, self._after = self._after, None
        if after is not None:
            self.send(after[0], connect=after[1])
        return _json(obj)

    def route(self, method: str, path: str, params: dict) -> dict:
        if method == "POST" and path == "/v1/accounts":
            return self.public(self._account(params))
        if method == "GET" and (m := re.fullmatch(r"/v1/accounts/(acct_\w+)", path)):
            return self.public(self._get(self.accounts, m.group(1), "account"))
        if method == "POST" and path == "/v1/account_links":
            return self.public(self._account_link(params))
        if method == "POST" and path == "/v1/checkout/sessions":
            return self.public(self._session(params))
        if method == "GET" and (m := re.fullmatch(r"/v1/checkout/sessions/(cs_test_\w+)", path)):
            return self.public(self._get(self.sessions, m.group(1), "checkout.session"))
        if method == "POST" and path == "/v1/coupons":
            return self.public(self._coupon(params))
        if method == "GET" and (m := re.fullmatch(r"/v1/coupons/([\w-]+)", path)):
            return self.public(self._get(self.coupons, m.group(1), "coupon"))
        if method == "POST" and path == "/v1/promotion_codes":
            return self.public(self._promotion_code(params))
        if m := re.fullmatch(r"/v1/promotion_codes/(promo_\w+)", path):
            if method == "GET":
                return self.public(self._get(self.promotion_codes, m.group(1), "promotion_code"))
            if method == "POST":
                return self.public(self._update_promotion_code(m.group(1), params))
        if method == "POST" and path == "/v1/refunds":
            return self.public(self._refund(params))
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}).")

    def _get(self, store: dict, key: str, kind: str) -> dict:
        if key not in store:
            raise ApiError(404, f"No such {kind}: '{key}'")
        return store[key]

    def hosted_checkout(self, request: Request, session_id: str) -> Response:
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(404, "No such checkout session.")
        if request.method == "POST":
            if request.form.get("action") == "cancel":
                return _redirect(session["cancel_url"])
            form = request.form
            shipping = None
            if session.get("shipping_address_collection") is not None:
                address = {k: form.get(k) or None for k in ("line1", "line2", "postal_code", "city", "state")}
                shipping = {"name": form.get("name"), "address": {**address, "country": form.get("country")}}
                if not (shipping["name"] and address["line1"] and address["city"] and address["postal_code"]):
                    raise ApiError(400, "Enter the shipping name and address.")
            self.complete(session_id, email=form.get("email") or "ada@example.com", shipping=shipping)
            return _redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))
        amount = f"{session['amount_total'] / 100:.2f} {str(session['currency']).upper()}"
        lines = "".join(
            f"<li>{html.escape(i['price_data']['product_data']['name'])} × {i.get('quantity', 1)}</li>"
            for i in session["_line_items"]
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>Fake Stripe Checkout</title></head><body>'
            f"<h1>Pay {html.escape(amount)}</h1><ul>{lines}</ul><p data-amount>{html.escape(amount)}</p>"
            f'<form method="post"><label>Email <input name="email" type="email" '
            f'value="{html.escape(session.get("customer_email") or "")}"></label>'
            f"{self._address_fields(session)}"
            '<label>Card number <input name="card" value="4242 4242 4242 4242"></label>'
            '<button type="submit" name="action" value="pay">Pay</button>'
            '<button type="submit" name="action" value="cancel">Cancel</button></form></body></html>'
        )
        return Response(page, content_type="text/html; charset=utf-8")

    def _address_fields(self, session: dict) -> str:
        """The hosted page's shipping address fields, when the session collects one."""
        collection = session.get("shipping_address_collection")
        if collection is None:
            return ""
        countries = "".join(f'<option value="{c}">{c}</option>' for c in collection["allowed_countries"])
        shipping = (session.get("shipping_cost") or {}).get("amount_total") or 0
        return (
            f"<fieldset><legend>Shipping address</legend><p data-shipping>Shipping {shipping / 100:.2f}</p>"
            '<label>Full name <input name="name" autocomplete="name"></label>'
            '<label>Address line 1 <input name="line1"></label><label>Address line 2 <input name="line2"></label>'
            '<label>Postal code <input name="postal_code"></label><label>City <input name="city"></label>'
            f'<label>Country <select name="country">{countries}</select></label></fieldset>'
        )

    def hosted_onboarding(self, request: Request, account_id: str) -> Response:
        if account_id not in self.accounts:
            raise ApiError(404, "No such account.")
        return_url = request.query.get("return") or request.form.get("return") or "/"
        if request.method == "POST":
            self.onboard(account_id)
            return _redirect(return_url)
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Stripe onboarding</title>'
            f'</head><body><h1>Set up payments</h1><form method="post"><input type="hidden" name="return" '
            f'value="{html.escape(return_url)}"><button type="submit">Submit</button></form></body></html>'
        )
        return Response(page, content_type="text/html; charset=utf-8")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def _json(obj: dict, *, replay: bool = False) -> Response:
    response = Response(json.dumps(obj))
    response.headers["Request-Id"] = "req_" + secrets.token_hex(8)
    if replay:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _redirect(url: str) -> Response:
    return Response("", status=303, content_type="text/plain", headers={"Location": url})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        response = self.fake.handle(Request(self.command, parts.path, query, self.headers, body))
        data = response.body.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet)
        pass


class FakeStripeServer:
    """The fake on a free loopback port, in a thread (one thread per connection)."""

    def __init__(self, fake: FakeStripe | None = None) -> None:
        self.fake = fake or FakeStripe()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.fake.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.fake.base_url

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --- pytest fixtures (import them into a test module) ---------------------------------------------------------


def _fake_stripe_fixture(settings: Any) -> Any:
    with FakeStripeServer() as fake:
        settings.STRIPE_API_BASE = fake.base_url
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
        settings.STRIPE_CONNECT_WEBHOOK_SECRET = fake.connect_webhook_secret
        settings.STRIPE_MAX_NETWORK_RETRIES = 0
        settings.BILLING_APPLICATION_FEE_PERCENT = 10
        yield fake


def _pytest_fixture() -> Any:
    import pytest

    return pytest.fixture(name="fake_stripe")(_fake_stripe_fixture)


fake_stripe_fixture = _pytest_fixture()
