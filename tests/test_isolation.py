"""The isolation matrix: every URL inside a studio, attacked with the other studio's ids.

Every URL pattern of the studio URLconf (studio_saas.urls_studio, through every include: pages, the API and its
DRF routers, the admin) is discovered from the resolver. For each pattern whose kwargs name an object, and for
each method, studio A's owner asks for studio B's object on A's own address: the answer must be 404. Never a
2xx or 3xx (it worked, or pretended to), never a 403 (which confirms the object exists). The same is done the
other way round, with an API key for the API, and a signed-in non-member must get 404 on every page of a
studio that isn't theirs.

How URL kwargs are mapped to the other studio's objects:
- `<model>_id`: the tenant-owned model whose model_name is <model> (job_id -> generation.Job);
- the admin's `object_id` (and the user admin's `id`): the model of the ModelAdmin that serves the URL;
- the admin's `content_type_id` + `object_id` ("view on site"): each tenant-owned model's content type + id;
- `token` of the invitation link: another studio's invitation;
- `link_token` of the client's self-upload page: another studio's clients.UploadLink token;
- `gallery_token` of a client's gallery (galleries/urls_public.py): another studio's galleries.Gallery token
  (with the other kwargs of the URL, e.g. `portrait_id`, also the other studio's);
- `media_token` of a signed media link (tenants/media.py): a link to another studio's photo thumbnail, both
  signed the way this studio signs (only scoping stops it) and genuinely made by the other studio (its
  signature is wrong here); the photos have real thumbnail files, so the studio's own links do serve (checked
  by test_media_links_of_the_world_work_for_their_own_studio).
A kwarg that can't be mapped fails test_every_url_kwarg_can_be_attacked: name object ids `<model>_id`, or add
the kwarg to NON_OBJECT_KWARGS below with the reason it names no studio object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.regex_helper import normalize

from tenants.models import Studio, User, is_tenant_owned
from tests.conftest import Tenant, add_member
from tests.factories import build_all, missing_factories, tenant_models

pytestmark = pytest.mark.django_db

STUDIO_URLCONF = "studio_saas.urls_studio"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Kwargs that name no studio object, with a harmless value for requests. (url name or "*", kwarg) -> value.
NON_OBJECT_KWARGS: dict[tuple[str, str], str] = {
    # The client pages' script translations: a language code of settings.LANGUAGES, the same for every studio.
    ("client_js_catalog", "language"): "fr",
    # Django's password reset link: a user account's uid and token, checked by Django's token generator.
    ("password_reset_confirm", "uidb64"): "MQ",
    ("password_reset_confirm", "token"): "set-password",
    # The admin's app index (a fixed list of app labels) and its catch-all.
    ("app_list", "app_label"): "tenants",
    ("*admin-catch-all", "url"): "no-such-page/",
    # A reminder's unsubscribe link: a signed token (a wrong one is refused with a 404 page).
    ("stop_reminders", "token"): "not-a-signed-token",
    # DRF's format suffix (".json").
    ("*", "format"): "json",
}

# Pages anyone may open, member or not (sign-in, password reset, an invitation link, the studio's logo).
# A signed-in non-member gets what an anonymous visitor gets there. Add a page here only if it is meant to be
# public; every other page of a studio is 404 for people who aren't its members.
PUBLIC_URL_NAMES = frozenset(
    {
        "login",
        "logout",
        # The language switcher of the studio's pages: saves the person's own choice (their account, a cookie).
        "set_language",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
        "accept_invitation",
        "studio_logo",
        "studio_gallery_cover",  # public branding like the logo: the top of the studio's client galleries
        "admin:login",
        # The client's self-upload pages: no account, the link's unguessable token is the credential.
        "self_upload",
        "self_upload_files",
        "self_upload_photos",
        # A client's gallery: no account, the share link's unguessable token is the credential (plus an optional
        # password and download PIN, galleries/access.py).
        "gallery_public",
        "gallery_unlock",
        "gallery_pin",
        "gallery_updates",
        "gallery_download_all",
        "gallery_zip",
        "gallery_portrait",
        "gallery_favorite",
        "gallery_more_like_me",
        # A reminder's unsubscribe page (clients/views_messages.py): no account, its signed token names the client
        # in this studio only.
        "stop_reminders",
        # Buying in a client's gallery (billing/urls_gallery.py): the same share-link credential.
        "gallery_buy",
        "gallery_buy_print",
        "gallery_print",
        "gallery_coupon",
        "gallery_order_success",
        "gallery_order_status",
        "gallery_download",
        # The studio API's documentation (the same as the platform's /api/docs/) and the site's icon.
        "studio-api-schema",
        "studio-api-docs",
        "favicon",
        # The client pages' script translations: the same words for every studio, nothing of a studio in them.
        "client_js_catalog",
    }
)


# --- Discovering the URL patterns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    chain: tuple[Any, ...]  # the resolvers and the final URLPattern
    namespace: str

    @property
    def pattern(self) -> URLPattern:
        return self.chain[-1]

    @property
    def name(self) -> str:
        name = self.pattern.name or ""
        if name and self.namespace:
            return f"{self.namespace}:{name}"
        if not name and self.namespace == "admin" and self.kwargs == ("url",):
            return "admin:*admin-catch-all"
        return name

    @property
    def short_name(self) -> str:
        return self.name.split(":")[-1]

    @property
    def template(self) -> str:
        """The path as a %-format string, e.g. "members/%(membership_id)s/role/"."""
        return "".join(normalize(part.pattern.regex.pattern)[0][0] for part in self.chain)

    @property
    def kwargs(self) -> tuple[str, ...]:
        names: list[str] = []
        for part in self.chain:
            names.extend(normalize(part.pattern.regex.pattern)[0][1])
        return tuple(names)

    @property
    def model_admin(self) -> Any:
        from django.contrib.admin import ModelAdmin

        callback = self.pattern.callback
        model_admin = getattr(callback, "model_admin", None)
        if model_admin is None:
            func = callback
            while func is not None and model_admin is None:  # a ModelAdmin's extra URL, e.g. the user's password
                owner = getattr(func, "__self__", None)
                model_admin = owner if isinstance(owner, ModelAdmin) else None
                func = getattr(func, "__wrapped__", None)
        return model_admin

    @property
    def is_api(self) -> bool:
        return self.template.startswith("api/")

    def path(self, values: dict[str, Any]) -> str:
        return "/" + self.template % {k: values[k] for k in self.kwargs}

    def __str__(self) -> str:
        return f"{self.template} ({self.name or 'unnamed'})"


def _walk(resolver: URLResolver, chain: tuple[Any, ...] = (), namespace: str = "") -> Iterator[Route]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _walk(entry, (*chain, entry), inner)
        elif isinstance(entry, URLPattern):
            yield Route((*chain, entry), namespace)


def studio_routes() -> list[Route]:
    return list(_walk(get_resolver(STUDIO_URLCONF)))


def _model_by_id_kwarg(kwarg: str) -> type[models.Model] | None:
    if not kwarg.endswith("_id"):
        return None
    name = kwarg[: -len("_id")]
    for model in tenant_models():
        if model._meta.model_name == name:
            return model
    return None


# --- Mapping kwargs to the other studio's objects -------------------------------------------------------------


@dataclass
class World:
    """Two studios with one row of every tenant-owned model each."""

    a: Tenant
    b: Tenant
    objects: dict[str, dict[type[models.Model], models.Model]] = field(default_factory=dict)

    def tenant(self, key: str) -> Tenant:
        return self.a if key == "a" else self.b

    def obj(self, key: str, model: type[models.Model]) -> models.Model | None:
        if is_tenant_owned(model):
            return self.objects[key][model]
        if model is Studio:
            return self.tenant(key).studio
        if model is User:
            return self.tenant(key).owner
        return None


class Unmappable(Exception):
    pass


def _non_object_value(route: Route, kwarg: str) -> str | None:
    for key in ((route.short_name, kwarg), (route.name, kwarg), ("*", kwarg)):
        if key in NON_OBJECT_KWARGS:
            return NON_OBJECT_KWARGS[key]
    return None


def _invitation_links(world: World, owner_key: str, target_key: str) -> list[tuple[str, frozenset[int]]]:
    """Links naming the target studio's invitation, as requested at the owner's studio, with the statuses
    allowed for each. A link signed the way the owner's studio signs must be 404 (only scoping stops it); the
    target studio's genuine link, or the bare token, is not a valid link of the owner's studio at all: that is
    bad input (400) or not found (404), never anything else."""
    from tenants.models import Invitation
    from tenants.selectors import invitation_signer

    invitation = world.objects[target_key][Invitation]
    return [
        (invitation_signer(world.tenant(owner_key).studio).sign(invitation.token), frozenset({404})),
        (invitation_signer(world.tenant(target_key).studio).sign(invitation.token), frozenset({400, 404})),
        (invitation.token, frozenset({400, 404})),
    ]


def _media_links(world: World, owner_key: str, target_key: str) -> list[str]:
    """Signed media tokens naming the target studio's photo thumbnail: one signed with the owner's studio's salt
    (a valid signature here; only the tenant scoping stops it), one genuinely made by the target studio."""
    import time

    from django.core import signing

    from clients.models import Photo
    from tenants.context import tenant_context
    from tenants.media import make_media_token, media_salt

    photo = world.objects[target_key][Photo]
    payload = {"m": "clients.photo", "p": photo.pk, "f": "thumbnail", "a": "m", "e": int(time.time()) + 600}
    forged = signing.dumps(payload, salt=media_salt(world.tenant(owner_key).studio.pk), compress=True)
    with tenant_context(world.tenant(target_key).studio):
        genuine = make_media_token(obj=photo, field="thumbnail")
    return [forged] if owner_key == target_key else [forged, genuine]


def attack_values(route: Route, world: World, owner_key: str, target_key: str) -> list[tuple[dict, frozenset]]:
    """Every kwargs dict naming the target studio's objects for a route, with the statuses allowed."""
    kwargs = route.kwargs
    base: dict[str, Any] = {}
    object_kwargs = []
    for kwarg in kwargs:
        value = _non_object_value(route, kwarg)
        if value is not None:
            base[kwarg] = value
        else:
            object_kwargs.append(kwarg)
    if not object_kwargs:
        return []
    if set(object_kwargs) == {"content_type_id", "object_id"}:  # the admin's "view on site"
        return [
            (
                {
                    **base,
                    "content_type_id": ContentType.objects.get_for_model(model).pk,
                    "object_id": world.objects[target_key][model].pk,
                },
                frozenset({404}),
            )
            for model in tenant_models()
        ]
    if object_kwargs == ["token"] and route.short_name == "accept_invitation":
        return [({**base, "token": link}, allowed) for link, allowed in _invitation_links(world, owner_key, target_key)]
    if object_kwargs == ["link_token"]:
        from clients.models import UploadLink

        return [({**base, "link_token": world.objects[target_key][UploadLink].token}, frozenset({404}))]
    if object_kwargs == ["media_token"]:
        return [
            ({**base, "media_token": token}, frozenset({404})) for token in _media_links(world, owner_key, target_key)
        ]
    values = dict(base)
    for kwarg in object_kwargs:
        if kwarg == "gallery_token":
            from galleries.models import Gallery

            values[kwarg] = world.objects[target_key][Gallery].token
            continue
        model = _model_by_id_kwarg(kwarg)
        if model is None and kwarg in ("object_id", "id") and route.model_admin is not None:
            model = route.model_admin.model
            obj = world.obj(target_key, model)
            values[kwarg] = obj.pk if obj is not None else 1
            continue
        if model is None:
            raise Unmappable(
                f"{route}: the isolation matrix can't tell which object the URL kwarg `{kwarg}` names. Name "
                "object ids `<model>_id` after a tenant-owned model (e.g. `job_id`, `invitation_id`), or, if it "
                "names no studio object, add it to NON_OBJECT_KWARGS in tests/test_isolation.py with the reason."
            )
        values[kwarg] = world.objects[target_key][model].pk
    return [(values, frozenset({404}))]


def own_values(route: Route, world: World, key: str) -> dict[str, Any]:
    """The same route's kwargs naming the requesting studio's own objects."""
    values = attack_values(route, world, key, key)
    return values[0][0] if values else {}


# --- Making requests ------------------------------------------------------------------------------------------


def send(client: Client, method: str, url: str, *, api: bool, headers: dict[str, str] | None = None) -> Any:
    if api:
        return client.generic(
            method,
            url,
            json.dumps({}) if method != "GET" else "",
            content_type="application/json",
            headers=headers or {},
        )
    return client.generic(method, url, "", content_type="application/x-www-form-urlencoded", headers=headers or {})


def check_route(
    client: Client,
    route: Route,
    world: World,
    owner_key: str,
    target_key: str,
    *,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Request the route at the owner's studio with the target studio's ids, every method. Returns failures."""
    failures = []
    prefix = world.tenant(owner_key).prefix
    for values, allowed in attack_values(route, world, owner_key, target_key):
        url = prefix + route.path(values)
        for method in METHODS:
            try:
                response = send(client, method, url, api=route.is_api, headers=headers)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{method} {url} [{route}]: raised {type(exc).__name__}: {exc}")
                continue
            status = response.status_code
            if status in allowed:
                continue
            if status == 405 and _same_for_own_object(client, route, world, owner_key, method, headers):
                continue  # the method doesn't exist for this URL at all: says nothing about the object
            failures.append(f"{method} {url} [{route}]: {status}, expected {sorted(allowed)}")
    return failures


def _same_for_own_object(
    client: Client, route: Route, world: World, key: str, method: str, headers: dict[str, str] | None
) -> bool:
    url = world.tenant(key).prefix + route.path(own_values(route, world, key))
    return send(client, method, url, api=route.is_api, headers=headers).status_code == 405


# --- Fixtures -------------------------------------------------------------------------------------------------


THUMBNAIL_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # starts like a JPEG: enough for the media view


@pytest.fixture
def world(two_tenants: tuple[Tenant, Tenant], settings: Any, tmp_path: Any) -> World:
    from django.core.files.base import ContentFile

    from clients.models import Photo
    from tenants.context import tenant_context

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private-media")},
        },
    }
    a, b = two_tenants
    world = World(a, b, {"a": build_all(a), "b": build_all(b)})
    for key in ("a", "b"):
        photo = world.objects[key][Photo]
        with tenant_context(world.tenant(key).studio):
            photo.thumbnail.save("thumb.jpg", ContentFile(THUMBNAIL_BYTES), save=True)
    return world


def _object_routes() -> list[Route]:
    return [r for r in studio_routes() if any(_non_object_value(r, k) is None for k in r.kwargs)]


# --- Tests ----------------------------------------------------------------------------------------------------


def test_discovery_finds_pages_api_and_admin():
    """A guard for the guard: the walk must see the URLs it is meant to attack."""
    names = {r.name for r in studio_routes()}
    assert {"api-member", "api-key", "revoke_api_key", "admin:tenants_membership_change"} <= names
    assert {"double-list", "double-detail", "double-test-render"} <= names  # the digital doubles API
    templates = {r.template for r in studio_routes()}
    assert "admin/tenants/invitation/%(object_id)s/" in templates  # the admin's unnamed redirect URL


def test_every_tenant_owned_model_has_a_factory():
    assert missing_factories() == [], (
        "Add a factory for each of these tenant-owned models to tests/factories.py "
        '(@factory("app_label.ModelName")) so the isolation tests cover them.'
    )


def test_every_url_kwarg_can_be_attacked(world: World):
    problems = []
    for route in studio_routes():
        try:
            attack_values(route, world, "a", "b")
        except Unmappable as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_every_model_with_urls_is_attacked(world: World):
    """Each tenant-owned model named by some URL kwarg gets a request with the other studio's id."""
    attacked = set()
    for route in _object_routes():
        for kwarg in route.kwargs:
            model = _model_by_id_kwarg(kwarg)
            if model is not None:
                attacked.add(model)
            elif kwarg == "object_id" and route.model_admin is not None:
                attacked.add(route.model_admin.model)
    from clients.models import Client as StudioClient
    from clients.models import ConsentText, Photo, PhotoSet, UploadLink
    from tenants.models import ApiKey, Invitation, Membership

    assert {ApiKey, Invitation, Membership} <= attacked
    assert {StudioClient, ConsentText, PhotoSet, Photo, UploadLink} <= attacked


def test_media_links_of_the_world_work_for_their_own_studio(client: Client, world: World):
    """A guard for the media attack: the same kind of link, naming the studio's own photo, is served (so the
    404s below come from the signature and the scoping, not from a missing file)."""
    for key in ("a", "b"):
        client.force_login(world.tenant(key).owner)
        for token in _media_links(world, key, key):
            response = client.get(f"{world.tenant(key).prefix}/media/{token}/")
            assert response.status_code == 200, response
            assert b"".join(response.streaming_content) == THUMBNAIL_BYTES


def test_upload_links_of_the_world_work_for_their_own_studio(client: Client, world: World):
    """A guard for the link_token attack: the studio's own self-upload link opens its page (no account)."""
    from clients.models import UploadLink

    for key in ("a", "b"):
        token = world.objects[key][UploadLink].token
        assert client.get(f"{world.tenant(key).prefix}/u/{token}/").status_code == 200


def test_owner_of_a_gets_404_for_every_object_of_b(client: Client, world: World):
    client.force_login(world.a.owner)
    failures: list[str] = []
    for route in _object_routes():
        failures += check_route(client, route, world, "a", "b")
    assert not failures, f"{len(failures)} requests with studio B's ids were not 404:\n" + "\n".join(failures)


def test_owner_of_b_gets_404_for_every_object_of_a(client: Client, world: World):
    client.force_login(world.b.owner)
    failures: list[str] = []
    for route in _object_routes():
        failures += check_route(client, route, world, "b", "a")
    assert not failures, f"{len(failures)} requests with studio A's ids were not 404:\n" + "\n".join(failures)


def test_api_key_of_a_gets_404_for_every_object_of_b(client: Client, world: World):
    from tenants.models import ApiKey

    headers = {"Authorization": f"Api-Key {world.objects['a'][ApiKey].raw_key}"}
    failures: list[str] = []
    api_routes = [r for r in _object_routes() if r.is_api]
    assert api_routes
    for route in api_routes:
        failures += check_route(client, route, world, "a", "b", headers=headers)
    assert not failures, f"{len(failures)} API requests with studio B's ids were not 404:\n" + "\n".join(failures)


def test_api_key_of_a_is_refused_at_b(client: Client, world: World):
    from tenants.models import ApiKey

    headers = {"Authorization": f"Api-Key {world.objects['a'][ApiKey].raw_key}"}
    for route in [r for r in studio_routes() if r.is_api]:
        values = own_values(route, world, "b") if route.kwargs else {}
        url = world.b.prefix + route.path(values)
        response = send(client, "GET", url, api=True, headers=headers)
        assert response.status_code == 401, f"GET {url}: {response.status_code}"
        assert response.json()["error"]["message"]


def test_non_member_gets_404_on_every_page_of_another_studio(client: Client, world: World):
    """Studio A's owner, signed in, on studio B's address with B's real ids: every page that isn't public
    answers 404, as for a studio that doesn't exist."""
    client.force_login(world.a.owner)
    failures = []
    for route in studio_routes():
        if route.name in PUBLIC_URL_NAMES or route.short_name in PUBLIC_URL_NAMES:
            continue
        try:
            values = own_values(route, world, "b")
            if not values and route.kwargs:
                values = {k: _non_object_value(route, k) for k in route.kwargs}
        except Unmappable:
            continue  # reported by test_every_url_kwarg_can_be_attacked
        url = world.b.prefix + route.path(values)
        for method in ("GET", "POST"):
            status = send(client, method, url, api=route.is_api).status_code
            if status != 404:
                failures.append(f"{method} {url} [{route}]: {status}")
    assert not failures, (
        "Pages of studio B that its non-member (A's owner) could reach; answer 404, or add the URL name to "
        "PUBLIC_URL_NAMES if the page is meant to be public:\n" + "\n".join(failures)
    )


def test_anonymous_visitors_are_sent_to_login_or_refused(client: Client, world: World):
    """Anonymous: pages redirect to the studio's login, the API answers 401, never data."""
    failures = []
    for route in studio_routes():
        if route.name in PUBLIC_URL_NAMES or route.short_name in PUBLIC_URL_NAMES:
            continue
        try:
            values = own_values(route, world, "b")
            if not values and route.kwargs:
                values = {k: _non_object_value(route, k) for k in route.kwargs}
        except Unmappable:
            continue
        url = world.b.prefix + route.path(values)
        response = send(client, "GET", url, api=route.is_api)
        if route.is_api:
            ok = response.status_code == 401
        else:
            ok = response.status_code == 404 or (
                response.status_code == 302 and "/accounts/login/" in response["Location"]
            )
        if not ok:
            failures.append(f"GET {url} [{route}]: {response.status_code} {response.get('Location', '')}")
    assert not failures, "\n".join(failures)


def test_every_composite_index_of_a_tenant_owned_model_starts_with_studio():
    problems = []
    for model in tenant_models():
        opts = model._meta
        groups: list[tuple[str, list[str]]] = []
        groups += [(f"index {i.name}", list(i.fields)) for i in opts.indexes]
        groups += [
            (f"constraint {c.name}", list(c.fields)) for c in opts.constraints if isinstance(c, models.UniqueConstraint)
        ]
        groups += [("unique_together", list(f)) for f in opts.unique_together]
        for label, fields in groups:
            if len(fields) > 1 and fields[0].lstrip("-") not in ("studio", "studio_id"):
                problems.append(f"{opts.label} {label}: {fields} (put `studio` first)")
        for index in opts.indexes:
            if index.expressions and len(index.expressions) > 1:
                problems.append(f"{opts.label} index {index.name}: expressions; make `studio` the first field")
    assert not problems, "\n".join(problems)


# --- Members of a studio open every admin page ----------------------------------------------------------------


def _studio_admin_app_labels() -> list[str]:
    """The app labels whose app index the studio admin shows: those with a model of a StudioScopedAdmin."""
    from django.contrib import admin

    from tenants.admin_scoping import StudioScopedAdmin

    return sorted({m._meta.app_label for m, ma in admin.site._registry.items() if isinstance(ma, StudioScopedAdmin)})


def _studio_admin_changelists() -> set[str]:
    from django.contrib import admin

    from tenants.admin_scoping import StudioScopedAdmin

    return {
        f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist"
        for m, ma in admin.site._registry.items()
        if isinstance(ma, StudioScopedAdmin)
    }


@pytest.mark.parametrize("role", ["owner", "manager", "photographer", "staff"])
def test_members_open_every_admin_page_of_their_studio(client: Client, world: World, role: str):
    """Issue 13, finding 4: every admin URL of the studio URLconf (index, app index of every app, changelist,
    add, change, delete, history, ...), requested by a member of studio A with A's own ids, answers 200 or a
    deliberate 3xx/403/404: never a 5xx (the app indexes raised KeyError: 'models'). The owner gets 200 on the
    index, every app index and every changelist."""
    from tenants.models import Role

    user = world.a.owner if role == Role.OWNER else add_member(world.a, f"{role}@studio-a.example", role)
    client.force_login(user)
    app_labels = _studio_admin_app_labels()
    assert len(app_labels) >= 6, app_labels
    must_open = {"admin:index", *_studio_admin_changelists()} if role == Role.OWNER else set()
    failures = []
    seen = set()
    for route in studio_routes():
        if not route.name.startswith("admin:") or route.name == "admin:logout":
            continue
        if route.name == "admin:app_list":
            urls = [(world.a.prefix + route.path({"app_label": label}), role == Role.OWNER) for label in app_labels]
        else:
            values = own_values(route, world, "a")
            if not values and route.kwargs:
                values = {k: _non_object_value(route, k) for k in route.kwargs}
            urls = [(world.a.prefix + route.path(values), route.name in must_open)]
        seen.add(route.name)
        for url, must_be_200 in urls:
            try:
                status = client.get(url).status_code
            except Exception as exc:  # noqa: BLE001
                failures.append(f"GET {url} [{route}]: raised {type(exc).__name__}: {exc}")
                continue
            if status >= 500 or (must_be_200 and status != 200):
                failures.append(f"GET {url} [{route}]: {status}")
    assert must_open <= seen, must_open - seen
    assert not failures, f"Admin pages of studio A that its {role} couldn't open:\n" + "\n".join(failures)
