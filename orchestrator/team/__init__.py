"""Teams: the usage ledger and budgets on PostgreSQL (docs/architecture.md, "Layers of trust").

`schema` holds the versioned migrations (tables, row level security, roles, functions), `pg` the
PostgreSQL ledger and its budget calls, `shared` the ledger ACE uses in team mode: PostgreSQL while
it answers, a local SQLite spool under a conservative cap while it does not, replayed once it does.
"""
