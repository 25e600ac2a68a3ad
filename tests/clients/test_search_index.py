"""The clients search's trigram index (clients.ClientSearchTerm, PostgreSQL; issue 16): the database's triggers
keep each client's trigrams as its name, email and phone change, in bulk too, and the search through the index
finds exactly what a plain LIKE over the studio's clients finds, for rare, common, short, accented and absent
terms, never a neighbour studio's client."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from clients import selectors
from clients.models import Client, ClientSearchTerm
from tenants.context import platform_context, tenant_context

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _trigrams(*parts: str) -> set[str]:
    return {p.lower()[i : i + 3] for p in parts if len(p) >= 3 for i in range(len(p) - 2)}


def _terms(client: Client) -> set[str]:
    return set(ClientSearchTerm.objects.filter(client=client).values_list("term", flat=True))


def _plain(search: str) -> list[int]:
    q = Q(name__icontains=search) | Q(email__icontains=search) | Q(phone__icontains=search)
    return list(Client.objects.filter(q).order_by(*selectors.CLIENT_LIST_ORDER).values_list("id", flat=True))


def test_the_triggers_keep_each_clients_trigrams(two_tenants):
    a, b = two_tenants
    with tenant_context(a.studio):
        anna = Client.objects.create(name="Anna Öberg", email="anna@mail.example", phone="+44 7700 900123")
        assert _terms(anna) == _trigrams("Anna Öberg", "anna@mail.example", "+44 7700 900123")
        anna.name = "Anna Lindqvist"
        anna.save()
        assert _terms(anna) == _trigrams("Anna Lindqvist", "anna@mail.example", "+44 7700 900123")
        Client.objects.filter(pk=anna.pk).update(email="", phone="12")  # a bulk update, no save()
        assert _terms(anna) == _trigrams("Anna Lindqvist")
        unchanged = set(ClientSearchTerm.objects.filter(client=anna).values_list("id", flat=True))
        Client.objects.filter(pk=anna.pk).update(notes="VIP")  # not a searched field: the rows stay as they are
        assert set(ClientSearchTerm.objects.filter(client=anna).values_list("id", flat=True)) == unchanged
        Client.objects.bulk_create([Client(name=f"Bulk {n}", email=f"bulk{n}@mail.example") for n in range(3)])
        bulk = Client.objects.filter(name__startswith="Bulk ")
        assert all(_terms(c) == _trigrams(c.name, c.email) for c in bulk)
        anna.delete()
        assert not ClientSearchTerm.objects.filter(client_id=anna.pk).exists()
    with tenant_context(b.studio):
        assert not ClientSearchTerm.objects.filter(client_id__in=[c.pk for c in bulk]).exists()  # RLS + manager
    with platform_context():
        studios = set(
            ClientSearchTerm.objects.filter(client__name__startswith="Bulk ").values_list("studio", flat=True)
        )
    assert studios == {a.studio.pk}


NAMES = [
    ("Anna Öberg", "anna.oberg@mail.example", "+44 7700 900123"),
    ("Marc Martin", "marc@martin.example", "+33 6 12 34 56 78"),
    ("Léa Martin", "lea@martin.example", ""),
    ("Chen Wei", "chen.wei@mail.example", "+86 138 0013 8000"),
    ("陈伟", "", "+86 139 0000 1111"),
    ("Zoë O'Brien", "zoe_obrien@mail.example", ""),
]


@pytest.mark.parametrize(
    "search",
    [
        "martin",
        "MARTIN",
        "Öberg",
        "öberg",
        "mail.example",
        "+33 6",
        "900123",
        "陈伟",
        "伟",
        "ë o'",
        "zoe_",
        "le",
        "a",
        "rtin@mart",
        "nobody",
        "xyz",
        "marc martin",
    ],
)
def test_the_index_finds_what_like_finds(two_tenants, search):
    a, b = two_tenants
    with tenant_context(b.studio):  # a neighbour with the same names: never in A's results
        Client.objects.bulk_create([Client(name=n, email=e, phone=p) for n, e, p in NAMES])
    with tenant_context(a.studio):
        Client.objects.bulk_create([Client(name=n, email=e, phone=p) for n, e, p in NAMES])
        Client.objects.bulk_create([Client(name=f"Filler {n}", email=f"f{n}@mail.example") for n in range(40)])
        found = list(selectors.clients_list(search=search).values_list("id", flat=True))
        assert found == _plain(search.strip())
        assert set(found) <= set(Client.objects.values_list("id", flat=True))


def test_a_rare_term_is_looked_up_in_the_index_and_a_common_one_is_not(tenant_a, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_SELECTIVE_CLIENTS", 20)
    with tenant_context(tenant_a.studio):
        Client.objects.bulk_create(
            [Client(name=f"Client {n:03d}", email=f"client{n}@mail.example") for n in range(60)]
            + [Client(name="Marguerite Duras", email="md@ecrire.example")]
        )
        rare = selectors.search_trigrams("duras")
        assert rare and set(rare) <= _trigrams("duras") and len(rare) <= selectors.SEARCH_TRIGRAMS_USED
        assert selectors.search_trigrams("mail.exa") is None  # every trigram in all 61 clients
        assert selectors.search_trigrams("qqqq") == []  # a trigram in no client: nothing can match
        assert selectors.search_trigrams("du") is None  # too short for a trigram
        sql = str(selectors.clients_list(search="duras").query)
        assert "clients_clientsearchterm" in sql
        assert [c.name for c in selectors.clients_list(search="duras")] == ["Marguerite Duras"]
        assert list(selectors.clients_list(search="qqqq")) == []
        assert len(selectors.clients_list(search="mail.exa")) == 60


def test_a_long_query_probes_a_few_of_its_trigrams_and_still_finds_its_client(tenant_a):
    with tenant_context(tenant_a.studio):
        Client.objects.bulk_create(
            [Client(name=f"Client {n:03d}", email=f"client{n}@mail.example") for n in range(30)]
            + [Client(name="Anna-Karin Öberg-Lindqvist", email="anna.karin.oberg.lindqvist@mail.example")]
        )
        with CaptureQueriesContext(connection) as ctx:
            rare = selectors.search_trigrams("anna.karin.oberg.lindqvist@mail")
        assert len(ctx.captured_queries) == 1 and rare
        found = selectors.clients_list(search="anna.karin.oberg.lindqvist@mail")
        assert [c.name for c in found] == ["Anna-Karin Öberg-Lindqvist"]


def test_the_platform_context_walks_the_list(tenant_a):
    with tenant_context(tenant_a.studio):
        Client.objects.create(name="Marc Martin")
    with platform_context():  # no studio: no probe (the index is read per studio)
        assert selectors.search_trigrams("martin") is None
        assert [c.name for c in selectors.clients_list(search="martin")] == ["Marc Martin"]
