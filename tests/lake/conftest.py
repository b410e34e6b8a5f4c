"""The lake tests' fixtures (`pg_server`, `pg_database`, `lake`) are in tests/conftest.py, shared
with the end-to-end tests that run on both backends (`backend`)."""
