"""`ace team`: set up and run a team's shared ledger on PostgreSQL.

- `ace team migrate`: create or upgrade ACE's schema (run it as the database's owner, once; a
  server whose role may create the schema does it by itself on start).
- `ace team budget`: set the team's, everyone's or one member's daily/monthly cap (team admins).
- `ace team status`: who this ACE acts as, the schema version, and the figures that apply.

The database comes from `--url`, else ACE_LEDGER_URL, else `ledger_url` in ACE's config.toml.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ace_lsp.orchestrator.errors import InputError


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


async def run(args: argparse.Namespace) -> int:
    from ace_lsp.orchestrator.team import schema
    from ace_lsp.orchestrator.team.pg import PgLedger, display_url, migrate_schema

    url = _url(args)
    if args.action == "migrate":
        before, applied = await migrate_schema(url)
        data: dict[str, Any] = {
            "ledger": display_url(url),
            "from_version": before,
            "version": schema.SCHEMA_VERSION,
            "applied": applied,
        }
        if args.json:
            print(json.dumps(data))
        elif applied:
            print(f"ACE's schema in {data['ledger']}: version {before} -> {schema.SCHEMA_VERSION}.")
        else:
            print(f"ACE's schema in {data['ledger']} is up to date (version {before}).")
        return 0
    pg = await PgLedger.open(url, migrate=False)
    try:
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


def _money(v: float) -> str:
    from ace_lsp.orchestrator.budget import usd

    return usd(v)


def _show(v: float | None) -> str:
    return "no cap" if v is None else _money(v)
