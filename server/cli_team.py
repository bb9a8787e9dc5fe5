"""`ace team`: set up and run a team's shared ledger on PostgreSQL.

- `ace team migrate`: create or upgrade ACE's schema and the team's roles (run it as the
  database's owner, once; a server whose role may do that does it by itself on start).
- `ace team budget`: set the team's, everyone's or one member's daily/monthly cap (team admins).
- `ace team status`: who this ACE acts as, the schema version, and the figures that apply.
- `ace team void`: void a run (it stays, marked, and stops counting) or end a reservation (team
  admins).

The database comes from `--url`, else ACE_LEDGER_URL, else `ledger_url` in ACE's config.toml.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ace_lsp.orchestrator.errors import InputError

if TYPE_CHECKING:
    from ace_lsp.orchestrator.team.pg import PgLedger


def _url(args: argparse.Namespace) -> str:
    from ace_lsp.orchestrator.config import load_config

    if args.url:
        return str(args.url)
    url = load_config().ledger_url
    if url is None:
        raise InputError(
            "No team ledger is configured: pass --url, set ACE_LEDGER_URL, or set ledger_url in "
            "ACE's config.toml."
        )
    return url


def _cap(value: str | None) -> float | None:
    if value is None or value.lower() in ("none", "off", ""):
        return None
    try:
        amount = float(value.lstrip("$"))
    except ValueError:
        raise InputError(
            f"A cap must be dollars like 5 or 0.50 (or 'none'), not {value!r}."
        ) from None
    if amount < 0:
        raise InputError(f"A cap cannot be negative ({value}).")
    return amount


def add_parser(sub: Any) -> None:
    team = sub.add_parser("team", help="the team's shared ledger on PostgreSQL")
    team.add_argument("--url", help="postgresql:// URL (default: ACE_LEDGER_URL or ledger_url)")
    team.add_argument("--json", action="store_true", help="print JSON")
    actions = team.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("migrate", help="create or upgrade ACE's schema (as the database owner)")
    actions.add_parser("status", help="this role, the schema version and the budget figures")
    budget = actions.add_parser("budget", help="set a cap (team admins only)")
    who = budget.add_mutually_exclusive_group(required=True)
    who.add_argument("--team", action="store_true", help="the whole team's cap")
    who.add_argument("--everyone", action="store_true", help="each member's default cap")
    who.add_argument("--user", help="one member's cap (their database role)")
    budget.add_argument("--daily", help="dollars per UTC day, or 'none'")
    budget.add_argument("--monthly", help="dollars per UTC month, or 'none'")
    void = actions.add_parser("void", help="void a run or end a reservation (team admins only)")
    what = void.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", metavar="ID", help="a run's id (or row_id) in ace.runs")
    what.add_argument("--reservation", metavar="ID", help="a reservation's id")


async def run(args: argparse.Namespace) -> int:
    from ace_lsp.orchestrator.team import schema
    from ace_lsp.orchestrator.team.pg import PgLedger, display_url, migrate_schema

    url = _url(args)
    if args.action == "migrate":
        done = await migrate_schema(url)
        data: dict[str, Any] = {
            "ledger": display_url(url),
            "from_version": done.before,
            "version": schema.SCHEMA_VERSION,
            "applied": done.applied,
            "member_role": done.member_role,
            "admin_role": done.admin_role,
            "shared_roles": done.shared_roles,
        }
        if args.json:
            print(json.dumps(data))
            return 0
        where, version = data["ledger"], schema.SCHEMA_VERSION
        if done.applied:
            print(f"ACE's schema in {where}: version {done.before} -> {version}.")
        else:
            print(f"ACE's schema in {where} is up to date (version {done.before}).")
        member, admin = schema.sql_name(done.member_role), schema.sql_name(done.admin_role)
        print(
            f"Members connect through role {member}, admins through {admin}: "
            f"GRANT {member} TO alice; GRANT {admin} TO carol;"
        )
        if done.shared_roles:
            print(
                "The shared roles ace_member and ace_team_admin still belong to this team; if "
                "another team in this cluster uses them too, grant this team's roles to its "
                f"people, then REVOKE {member} FROM ace_member; REVOKE {admin} FROM ace_team_admin;"
            )
        return 0
    pg = await PgLedger.open(url, migrate=False)
    try:
        if args.action == "void":
            return await _void(pg, args)
        if args.action == "budget":
            if args.daily is None and args.monthly is None:
                raise InputError("Give --daily and/or --monthly (dollars, or 'none').")
            subject = "" if args.team else "*" if args.everyone else str(args.user)
            current = await pg.budget_of(subject)
            daily = _cap(args.daily) if args.daily is not None else current[0]
            monthly = _cap(args.monthly) if args.monthly is not None else current[1]
            await pg.set_budget(subject, daily, monthly)
            whom = "the team" if args.team else "every member" if args.everyone else args.user
            data = {"subject": whom, "daily_usd": daily, "monthly_usd": monthly}
            if args.json:
                print(json.dumps(data))
            else:
                print(f"Caps for {whom}: daily {_show(daily)}, monthly {_show(monthly)}.")
            return 0
        figures = await pg.status(None, None)
        data = {
            "ledger": pg.where,
            "role": pg.user,
            "admin": pg.admin,
            "version": schema.SCHEMA_VERSION,
            "you": vars(figures["user"]),
            "team": vars(figures["team"]),
        }
        if args.json:
            print(json.dumps(data))
        else:
            mine, team = figures["user"], figures["team"]
            role = "team admin" if pg.admin else "member"
            print(
                f"{pg.where}: you are {pg.user} ({role}); schema version {schema.SCHEMA_VERSION}."
            )
            print(
                f"You today {_money(mine.spent_today)} of {_show(mine.daily_limit)}, this month "
                f"{_money(mine.spent_month)} of {_show(mine.monthly_limit)}."
            )
            print(
                f"Team today {_money(team.spent_today)} of {_show(team.daily_limit)}, this month "
                f"{_money(team.spent_month)} of {_show(team.monthly_limit)}; "
                f"{_money(team.reserved)} reserved by calls in flight."
            )
        return 0
    finally:
        await pg.close()


async def _void(pg: PgLedger, args: argparse.Namespace) -> int:
    from ace_lsp.orchestrator.ledger import LedgerError

    if args.reservation is not None:
        found = await pg.void_reservation(str(args.reservation))
        if found is None:
            raise LedgerError(
                f"The team ledger at {pg.where} has no reservation {args.reservation} "
                "(it may have ended or expired)."
            )
        user, amount = found
        data: dict[str, Any] = {"reservation": args.reservation, "user": user, "amount": amount}
        text = f"Ended {user}'s reservation {args.reservation} of {_money(amount)}."
    else:
        run = await pg.void_run(str(args.run))
        data = {
            "run": run.id,
            "user": run.user,
            "cost_usd": run.cost_usd,
            "ts": run.ts,
            "voided_by": run.voided_by,
            "voided_at": run.voided_at,
            "newly": run.newly,
        }
        day = _utc(run.ts, "%Y-%m-%d")
        if run.newly:
            text = (
                f"Voided run {run.id} ({run.user}, {_money(run.cost_usd)} on {day}): it no "
                "longer counts."
            )
        else:
            text = (
                f"Run {run.id} ({run.user}, {day}) was voided already, by {run.voided_by} at "
                f"{_utc(run.voided_at, '%Y-%m-%d %H:%M')} UTC."
            )
    print(json.dumps(data) if args.json else text)
    return 0


def _utc(ts: float, layout: str) -> str:
    """A UTC time; a row voided for a poison time (NaN, far ahead) may have none to show."""
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime(layout)
    except (ValueError, OverflowError, OSError):
        return f"time {ts!r}"


def _money(v: float) -> str:
    from ace_lsp.orchestrator.budget import usd

    return usd(v)


def _show(v: float | None) -> str:
    return "no cap" if v is None else _money(v)
