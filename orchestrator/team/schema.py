"""The team ledger's schema in PostgreSQL: versioned migrations that ACE applies itself.

Everything lives in the schema `ace`:

- `ace.runs`: one row per attempt (the seed's `llmRuns`). `row_id` is unique, so writing a row
  twice (a replayed spool, a retried batch) stores it once. Row level security: a member inserts
  rows only as themselves (`user_name = current_user`) and reads only their own; a `team_admin`
  reads all.
- `ace.totals`: spending per subject (a user, or '' for the whole team) and UTC day, kept by a
  statement trigger on `ace.runs`, in the same transaction as the rows: a row counts once, when
  it is written (a row skipped as already stored is not in the trigger's transition table).
- `ace.reservations`: money set aside for calls in flight, each with an expiry, so the reservations
  of a process that died are released. The trigger deletes a row's reservation when the row lands.
- `ace.budgets`: daily/monthly caps per user, '*' for every user without their own, '' for the
  team. Members read the ones that apply to them; only a `team_admin` writes them.
- `ace.reserve(…)`: one transaction under one advisory lock: expire, check the user's and the
  team's caps against spent + reserved + amount, insert the reservation. Members cannot touch
  `totals` or `reservations` directly; they go through these SECURITY DEFINER functions, which act
  for `session_user` (the role the server logged in as).

Roles `ace_member` and `ace_team_admin` are cluster-wide and created here when missing: the first
migration needs a role that may create roles and schemas (the database owner or a superuser; see
`ace team migrate`). Each migration runs in its own transaction under an advisory lock, and the
version is checked again under the lock, so two servers starting at once apply it once.
"""

from __future__ import annotations

from typing import Any

LOCK_MIGRATE = 0x616365  # "ace": advisory lock key for migrations (pg_advisory_lock(key, 0))
TEAM = ""  # the `subject` of the team's totals and budget
EVERYONE = "*"  # the `subject` of the default per-user budget

MIGRATIONS: tuple[str, ...] = (
    # 1: tables, row level security, roles, the budget functions
    r"""
CREATE SCHEMA IF NOT EXISTS ace;

DO $$ BEGIN CREATE ROLE ace_member NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE ace_team_admin NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT ace_member TO ace_team_admin;
GRANT USAGE ON SCHEMA ace TO ace_member;

CREATE TABLE ace.runs (
    id bigserial PRIMARY KEY,
    row_id text NOT NULL UNIQUE,
    user_name text NOT NULL DEFAULT current_user,
    ts double precision NOT NULL,
    request_id text NOT NULL,
    task text NOT NULL,
    tier text NOT NULL,
    model text NOT NULL,
    provider text NOT NULL,
    input_tokens integer NOT NULL,
    output_tokens integer NOT NULL,
    cost_usd double precision NOT NULL CHECK (cost_usd >= 0),
    latency_ms double precision NOT NULL,
    outcome text NOT NULL,
    chain_position integer NOT NULL,
    attempt integer NOT NULL,
    reservation_id text
);
CREATE INDEX runs_ts ON ace.runs (ts);
CREATE INDEX runs_user_ts ON ace.runs (user_name, ts);
CREATE INDEX runs_model_ts ON ace.runs (model, ts);
ALTER TABLE ace.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_insert_own ON ace.runs FOR INSERT TO ace_member
    WITH CHECK (user_name = current_user);
CREATE POLICY runs_read ON ace.runs FOR SELECT TO ace_member
    USING (user_name = current_user OR pg_has_role(current_user, 'ace_team_admin', 'MEMBER'));
GRANT SELECT, INSERT ON ace.runs TO ace_member;
GRANT USAGE ON SEQUENCE ace.runs_id_seq TO ace_member;

CREATE TABLE ace.totals (
    subject text NOT NULL,
    day date NOT NULL,
    spent double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, day)
);

CREATE TABLE ace.reservations (
    id text PRIMARY KEY,
    user_name text NOT NULL,
    amount double precision NOT NULL CHECK (amount >= 0),
    expires_at timestamptz NOT NULL
);
CREATE INDEX reservations_user ON ace.reservations (user_name);
CREATE INDEX reservations_expiry ON ace.reservations (expires_at);

CREATE TABLE ace.budgets (
    subject text PRIMARY KEY,
    daily_usd double precision CHECK (daily_usd >= 0),
    monthly_usd double precision CHECK (monthly_usd >= 0),
    updated_by text NOT NULL DEFAULT current_user,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ace.budgets ENABLE ROW LEVEL SECURITY;
CREATE POLICY budgets_read ON ace.budgets FOR SELECT TO ace_member
    USING (subject IN ('', '*', current_user)
           OR pg_has_role(current_user, 'ace_team_admin', 'MEMBER'));
CREATE POLICY budgets_admin ON ace.budgets FOR ALL TO ace_team_admin
    USING (true) WITH CHECK (true);
GRANT SELECT ON ace.budgets TO ace_member;
GRANT INSERT, UPDATE, DELETE ON ace.budgets TO ace_team_admin;

-- Rows count when they land: their reservations end and their costs go to their UTC days'
-- totals, one upsert per (subject, day) per statement, taken in one order (no deadlocks).
CREATE FUNCTION ace.count_runs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ace, pg_temp AS $$
BEGIN
    DELETE FROM ace.reservations r USING new_rows n
    WHERE r.id = n.reservation_id AND r.user_name = n.user_name;
    INSERT INTO ace.totals AS t (subject, day, spent)
    SELECT c.subject, c.day, sum(c.cost) FROM (
        SELECT '' AS subject, (to_timestamp(n.ts) AT TIME ZONE 'UTC')::date AS day,
               n.cost_usd AS cost
        FROM new_rows n WHERE n.cost_usd > 0
        UNION ALL
        SELECT n.user_name, (to_timestamp(n.ts) AT TIME ZONE 'UTC')::date, n.cost_usd
        FROM new_rows n WHERE n.cost_usd > 0
    ) AS c
    GROUP BY c.subject, c.day
    ORDER BY c.subject, c.day
    ON CONFLICT (subject, day) DO UPDATE SET spent = t.spent + EXCLUDED.spent;
    RETURN NULL;
END $$;
CREATE TRIGGER runs_count AFTER INSERT ON ace.runs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ace.count_runs();

-- What applies to session_user now: spent today / this month, reserved, and the caps
-- (the smaller of the caller's own and the admin's; NULL: no cap).
CREATE FUNCTION ace.budget_status(p_daily double precision, p_monthly double precision)
RETURNS TABLE (
    scope text, spent_today double precision, spent_month double precision,
    reserved double precision, daily_limit double precision, monthly_limit double precision
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
DECLARE
    me text := session_user;
    today date := (now() AT TIME ZONE 'UTC')::date;
    month_start date := date_trunc('month', (now() AT TIME ZONE 'UTC'))::date;
    u_daily double precision;
    u_monthly double precision;
    t_daily double precision;
    t_monthly double precision;
BEGIN
    SELECT b.daily_usd, b.monthly_usd INTO u_daily, u_monthly
    FROM ace.budgets b WHERE b.subject IN (me, '*') ORDER BY (b.subject = me) DESC LIMIT 1;
    SELECT b.daily_usd, b.monthly_usd INTO t_daily, t_monthly
    FROM ace.budgets b WHERE b.subject = '';
    RETURN QUERY
    SELECT 'user',
        (SELECT coalesce(sum(t.spent), 0) FROM ace.totals t WHERE t.subject = me AND t.day = today),
        (SELECT coalesce(sum(t.spent), 0) FROM ace.totals t
         WHERE t.subject = me AND t.day >= month_start),
        (SELECT coalesce(sum(r.amount), 0) FROM ace.reservations r
         WHERE r.user_name = me AND r.expires_at >= now()),
        least(p_daily, u_daily), least(p_monthly, u_monthly)
    UNION ALL
    SELECT 'team',
        (SELECT coalesce(sum(t.spent), 0) FROM ace.totals t WHERE t.subject = '' AND t.day = today),
        (SELECT coalesce(sum(t.spent), 0) FROM ace.totals t
         WHERE t.subject = '' AND t.day >= month_start),
        (SELECT coalesce(sum(r.amount), 0) FROM ace.reservations r WHERE r.expires_at >= now()),
        t_daily, t_monthly;
END $$;

-- Reserve p_amount for session_user, or say which cap it would pass. One lock for the team:
-- checks and inserts never interleave, so concurrent reservations cannot overspend together.
CREATE FUNCTION ace.reserve(
    p_id text, p_amount double precision, p_daily double precision,
    p_monthly double precision, p_ttl_s double precision
)
RETURNS TABLE (
    granted boolean, scope text, period text, spent double precision,
    reserved double precision, cap double precision
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
DECLARE
    s record;
BEGIN
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'amount must be a non-negative number of dollars';
    END IF;
    PERFORM pg_advisory_xact_lock(6382437, 1);
    DELETE FROM ace.reservations WHERE expires_at < now();
    IF EXISTS (SELECT 1 FROM ace.reservations r WHERE r.id = p_id) THEN
        RETURN QUERY SELECT true, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::float8;
        RETURN;  -- asked twice (a retried round trip): granted once
    END IF;
    FOR s IN SELECT * FROM ace.budget_status(p_daily, p_monthly) LOOP
        IF s.daily_limit IS NOT NULL
           AND s.spent_today + s.reserved + p_amount > s.daily_limit + 1e-9 THEN
            RETURN QUERY SELECT false, s.scope, 'daily', s.spent_today, s.reserved, s.daily_limit;
            RETURN;
        END IF;
        IF s.monthly_limit IS NOT NULL
           AND s.spent_month + s.reserved + p_amount > s.monthly_limit + 1e-9 THEN
            RETURN QUERY SELECT false, s.scope, 'monthly', s.spent_month, s.reserved,
                s.monthly_limit;
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO ace.reservations (id, user_name, amount, expires_at)
    VALUES (p_id, session_user, p_amount, now() + make_interval(secs => p_ttl_s));
    RETURN QUERY SELECT true, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::float8;
END $$;

-- Give back a reservation whose call wrote no row (ACE writes a row for every attempt, so this
-- is for calls that never started).
CREATE FUNCTION ace.release(p_id text) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    DELETE FROM ace.reservations WHERE id = p_id AND user_name = session_user;
$$;

-- Every member's recent attempts per model, without who made them: shared routing statistics.
CREATE FUNCTION ace.recent_runs(per_model integer)
RETURNS TABLE (
    ts double precision, request_id text, task text, tier text, model text, provider text,
    input_tokens integer, output_tokens integer, cost_usd double precision,
    latency_ms double precision, outcome text, chain_position integer, attempt integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    SELECT r.ts, r.request_id, r.task, r.tier, r.model, r.provider, r.input_tokens,
           r.output_tokens, r.cost_usd, r.latency_ms, r.outcome, r.chain_position, r.attempt
    FROM (SELECT DISTINCT m.model FROM ace.runs m) AS models
    CROSS JOIN LATERAL (
        SELECT * FROM ace.runs x WHERE x.model = models.model
        ORDER BY x.ts DESC, x.id DESC LIMIT per_model
    ) AS r
    ORDER BY r.ts, r.id;
$$;

-- Other members' attempts after row `p_after` (an id), oldest first, without who made them:
-- one member's failures open everyone's circuits.
CREATE FUNCTION ace.others_since(p_after bigint, p_limit integer)
RETURNS TABLE (
    id bigint, ts double precision, request_id text, task text, tier text, model text,
    provider text, input_tokens integer, output_tokens integer, cost_usd double precision,
    latency_ms double precision, outcome text, chain_position integer, attempt integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    SELECT r.id, r.ts, r.request_id, r.task, r.tier, r.model, r.provider, r.input_tokens,
           r.output_tokens, r.cost_usd, r.latency_ms, r.outcome, r.chain_position, r.attempt
    FROM ace.runs r WHERE r.id > p_after AND r.user_name <> session_user
    ORDER BY r.id LIMIT p_limit;
$$;

CREATE FUNCTION ace.last_run_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    SELECT coalesce(max(id), 0) FROM ace.runs;
$$;

REVOKE ALL ON FUNCTION ace.last_run_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ace.last_run_id() TO ace_member;
REVOKE ALL ON FUNCTION ace.others_since(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ace.others_since(bigint, integer) TO ace_member;
REVOKE ALL ON FUNCTION ace.budget_status(double precision, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION ace.reserve(text, double precision, double precision, double precision,
    double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION ace.release(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ace.recent_runs(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ace.budget_status(double precision, double precision) TO ace_member;
GRANT EXECUTE ON FUNCTION ace.reserve(text, double precision, double precision,
    double precision, double precision) TO ace_member;
GRANT EXECUTE ON FUNCTION ace.release(text) TO ace_member;
GRANT EXECUTE ON FUNCTION ace.recent_runs(integer) TO ace_member;
""",
)
SCHEMA_VERSION = len(MIGRATIONS)


class MigrationNeeded(Exception):
    """The schema is missing or old and this role may not migrate it."""


async def current_version(conn: Any) -> int:
    """The schema version in the database: 0 when ACE's schema is not there."""
    cur = await conn.execute("SELECT to_regclass('ace.schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM ace.schema_version")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: Any) -> int:
    """Bring the schema to SCHEMA_VERSION on `conn` (an autocommit psycopg AsyncConnection).

    Returns the number of migrations applied. Idempotent; two callers at once apply each migration
    once (advisory lock, version checked again under it). Raises psycopg errors as they come.
    """
    if await current_version(conn) == SCHEMA_VERSION:
        return 0
    await conn.execute("SELECT pg_advisory_lock(%s, 0)", (LOCK_MIGRATE,))
    try:
        applied = 0
        version = await current_version(conn)
        if version > SCHEMA_VERSION:
            raise MigrationNeeded(
                f"The team ledger has schema version {version}, newer than this ACE understands "
                f"({SCHEMA_VERSION}); upgrade ACE."
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            async with conn.transaction():
                await conn.execute(MIGRATIONS[number - 1])
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS ace.schema_version ("
                    " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                await conn.execute("GRANT SELECT ON ace.schema_version TO ace_member")
                await conn.execute(
                    "INSERT INTO ace.schema_version (version) VALUES (%s)", (number,)
                )
            applied += 1
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_MIGRATE,))
