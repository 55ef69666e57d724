"""Store and drift tests: the ``db_url`` fixture (SQLite and PostgreSQL) is in
tests/conftest.py, shared with the real-history tests."""
