"""The pages of digital doubles (doubles.py), render runs and the designer's preview (runs.py) and the actions on
portraits (portraits.py)."""
