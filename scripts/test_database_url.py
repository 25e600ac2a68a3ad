"""Print the DATABASE_URL the test suite should use: $DATABASE_URL, else the local PostgreSQL on
127.0.0.1:5432 when it answers, else nothing (SQLite; PostgreSQL-only tests are then skipped)."""

import os
import socket
import sys

url = os.environ.get("DATABASE_URL", "")
if not url:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            url = "postgres://postgres@127.0.0.1:5432/studio_saas"
    except OSError:
        print("No PostgreSQL answers on 127.0.0.1:5432: PostgreSQL-only tests will be skipped.", file=sys.stderr)
print(url)
