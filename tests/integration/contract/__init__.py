"""The Store contract (agent/store/base.py), one file per part of the Protocol.

Every test takes the ``store`` fixture (tests/conftest.py), so it runs on every backend: the SQL
store on SQLite, on PostgreSQL and on PostgreSQL set up like a Supabase project (connected as a
non-superuser role, under row-level security), and the in-memory store. The exactly-once
guarantees (a post is claimed, finished, attributed and learned from once) are checked by
counting the rows the database actually holds, not by trusting return values alone.
``tests/integration/test_store_contract_pooler.py`` runs them all again with the transaction
pooler's settings.
"""
