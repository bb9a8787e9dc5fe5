"""A real PostgreSQL server for the team-ledger tests: one throwaway cluster per test session.

Roles (cluster-wide): `owner` creates and migrates the schema (as a team's database owner would),
`alice` and `bob` are members, `carol` is the team admin. Each test gets a fresh database, and
the logins are granted that database's own roles (`ace_member_<db>`, `ace_team_admin_<db>`). When
no server can be started the tests skip with the reason, except under CI=1, where they fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.pg_cluster import ADMIN, MEMBERS, NoPostgres, PgCluster

__all__ = ["ADMIN", "MEMBERS", "TeamDb"]
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def cluster() -> Iterator[PgCluster]:
    try:
        c = PgCluster()
        c.start()
    except NoPostgres as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but no server starts: {exc}")
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    c.create_roles()
    try:
        yield c
    finally:
        c.close()


@dataclass
class TeamDb:
    cluster: PgCluster
    name: str

    def url(self, user: str) -> str:
        return self.cluster.url(user, self.name)

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (to look behind row level security)."""
        with psycopg.connect(self.cluster.url(database=self.name), autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture
async def team(cluster: PgCluster) -> AsyncIterator[TeamDb]:
    """A fresh database owned by `owner`, migrated, with members and an admin granted."""
    if not cluster.running():
        cluster.start()  # a test that stopped the server did not get to restart it
    name = f"team{next(_numbers)}"
    await cluster.create_team(name)
    db = TeamDb(cluster, name)
    yield db
