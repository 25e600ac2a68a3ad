"""The clients search's trigram index (issue 16), PostgreSQL only.

Row-level security lets PostgreSQL use only leakproof operators as index conditions on the application role's
queries; LIKE is not one (migration 0003), `=` is. So each client's trigrams (every three consecutive characters
of its lower-cased name, email and phone) are kept as rows of clients_clientsearchterm, by a trigger on
clients_client that rewrites them when a client is created or one of those fields changes, and the search
(clients.selectors.clients_list) looks its rarest trigrams up with `=`, then checks the few clients found with
LIKE. Existing clients get theirs here. The SQLite default has no trigger and no rows: its search reads the
studio's clients, as before."""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE OR REPLACE FUNCTION client_search_trigrams(VARIADIC parts text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(s, i, 3)), '{}')
    FROM (SELECT lower(p) AS s FROM unnest(parts) AS p WHERE length(p) >= 3) AS f, generate_series(1, length(s) - 2) AS i
$$;

-- Statement-level, with transition tables: a bulk insert or update rewrites its clients' trigrams in one pass.
CREATE OR REPLACE FUNCTION clients_client_search_terms_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clients_clientsearchterm (studio_id, client_id, term)
    SELECT n.studio_id, n.id, t FROM new_rows AS n, unnest(client_search_trigrams(n.name, n.email, n.phone)) AS t;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION clients_client_search_terms_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM clients_clientsearchterm AS s USING new_rows AS n, old_rows AS o
    WHERE s.client_id = n.id AND o.id = n.id
      AND (n.name, n.email, n.phone, n.studio_id) IS DISTINCT FROM (o.name, o.email, o.phone, o.studio_id);
    INSERT INTO clients_clientsearchterm (studio_id, client_id, term)
    SELECT n.studio_id, n.id, t
    FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id, unnest(client_search_trigrams(n.name, n.email, n.phone)) AS t
    WHERE (n.name, n.email, n.phone, n.studio_id) IS DISTINCT FROM (o.name, o.email, o.phone, o.studio_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_client_search_terms_inserted AFTER INSERT ON clients_client
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION clients_client_search_terms_inserted();
CREATE TRIGGER clients_client_search_terms_updated AFTER UPDATE ON clients_client
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION clients_client_search_terms_updated();

-- Every studio's clients (the owner role is under forced row-level security too: the platform setting).
SELECT set_config('app.platform', 'on', true);
INSERT INTO clients_clientsearchterm (studio_id, client_id, term)
SELECT c.studio_id, c.id, t FROM clients_client AS c, unnest(client_search_trigrams(c.name, c.email, c.phone)) AS t;
SELECT set_config('app.platform', '', true);
"""

BACKWARD = """
DROP TRIGGER IF EXISTS clients_client_search_terms_inserted ON clients_client;
DROP TRIGGER IF EXISTS clients_client_search_terms_updated ON clients_client;
DROP FUNCTION IF EXISTS clients_client_search_terms_inserted();
DROP FUNCTION IF EXISTS clients_client_search_terms_updated();
DROP FUNCTION IF EXISTS client_search_trigrams(VARIADIC text[]);
"""


def _postgresql(sql: str):  # noqa: ANN202
    def run(apps, schema_editor) -> None:  # noqa: ANN001
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0003_client_list_indexes"),
        ("tenants", "0003_remove_studio_plan"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClientSearchTerm",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("term", models.CharField(max_length=3)),
                (
                    "client",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="clients.client",
                    ),
                ),
                (
                    "studio",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.studio"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["studio", "term", "client"], name="clientsearchterm_term")],
                "constraints": [models.UniqueConstraint(fields=("studio", "client", "term"), name="clientsearchterm_unique")],
            },
        ),
        migrations.RunPython(_postgresql(FORWARD), _postgresql(BACKWARD)),
    ]
