"""URLconfs of the studio's pages: doubles/ (doubles.py) and runs/ (runs.py, with the portraits' actions)."""
