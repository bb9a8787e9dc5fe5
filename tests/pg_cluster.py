"""A throwaway PostgreSQL cluster on 127.0.0.1 for the team-ledger tests.

`initdb` into a temporary folder, trust authentication on loopback only, `fsync=off` (the data is
thrown away), a free port. PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` system user (Debian's package creates it) and its tools run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
OWNER = "owner"  # creates and migrates the team databases, as a team's database owner would
MEMBERS = ("alice", "bob", "dave", "erin")
ADMIN = "carol"


class NoPostgres(Exception):
    """No PostgreSQL server can be started here; the message says why and what to install."""


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise NoPostgres(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; "
            "`apt-get install postgresql` provides them."
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One cluster: `start()`, `stop()`, `url(user)`; `close()` stops it and deletes its files."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ace-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                shutil.chown(self.root, user="postgres")
            except (LookupError, PermissionError) as exc:
                raise NoPostgres(
                    f"Running as root, but cannot hand a folder to the `postgres` user ({exc})."
                ) from None
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise NoPostgres(f"`{tool}` failed: {' / '.join(tail)} (log: {self.log})")
        return done

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def url(self, user: str = SUPERUSER, database: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser."""
        import psycopg

        with psycopg.connect(self.url(database=database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())  # bytes: a query built here, not a literal

    def create_roles(self) -> None:
        """The login roles of a team: OWNER (may create roles), MEMBERS and ADMIN."""
        self.sql(
            f"CREATE ROLE {OWNER} LOGIN CREATEROLE",
            *(f"CREATE ROLE {name} LOGIN" for name in (*MEMBERS, ADMIN)),
        )

    async def create_team(self, database: str) -> None:
        """A database owned by OWNER, migrated by ACE as OWNER, MEMBERS and ADMIN granted the
        team's own roles (`ace_member_<db>`, `ace_team_admin_<db>`), as the README says."""
        import psycopg

        from ace_lsp.orchestrator.team import schema

        self.sql(f"CREATE DATABASE {database} OWNER {OWNER}")
        url = self.url(OWNER, database)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await schema.migrate(conn)
            member, admin = await schema.roles_in(conn)
        self.sql(
            *(f'GRANT "{member}" TO {name}' for name in MEMBERS),
            f'GRANT "{admin}" TO {ADMIN}',
        )

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(NoPostgres):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
