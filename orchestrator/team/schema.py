"""The team ledger's schema in PostgreSQL: versioned migrations that ACE applies itself.

Everything lives in the schema `ace`, in one database per team:

- `ace.runs`: one row per attempt (see docs/architecture.md). `row_id` is unique, so writing a row
  twice (a replayed spool, a retried batch) stores it once. The database stamps `ts` (when the row
  lands) and `user_name` (`session_user`): members may not supply either (column privileges), so
  a row cannot be dated into another day nor written in another name. Row level security: a
  member reads only their own rows; a team admin reads all. A cost is a number from 0 up to
  1000 dollars (NaN and Infinity refused too). A row an admin voids (`ace.void_run`) is kept,
  with `voided_at`/`voided_by`, and no longer counts anywhere.
- `ace.totals`: spending per subject (a user, or '' for the whole team) and UTC day, kept by a
  statement trigger on `ace.runs`, in the same transaction as the rows: a row counts once, when
  it is written (a row skipped as already stored is not in the trigger's transition table).
- `ace.reservations`: money set aside for calls in flight, each with an expiry (an hour at most,
  whatever the caller asks), so the reservations of a process that died are released. The
  trigger deletes a row's reservation when the row lands; an admin may end one
  (`ace.void_reservation`).
- `ace.budgets`: daily/monthly caps per user, '*' for every user without their own, '' for the
  team. Members read the ones that apply to them; only a team admin writes them.
- `ace.reserve(…)`: one transaction under one advisory lock: expire, check the user's and the
  team's caps against spent + reserved + amount, insert the reservation. Members cannot touch
  `totals` or `reservations` directly; they go through these SECURITY DEFINER functions, which act
  for `session_user` (the role the server logged in as).

Roles are cluster-wide in PostgreSQL, so each team database has its own: `ace_member_<db>` and
`ace_team_admin_<db>` (`ace.team_roles` names them), the only roles that may connect to it.
Version 1 used the shared `ace_member` and `ace_team_admin`; a database upgraded from it keeps
them as members of its own roles, so an existing set-up goes on working. Migrating needs the
database's owner with CREATEROLE (or a superuser). Each migration runs in its own transaction
under an advisory lock, and the version is checked again under the lock, so two servers starting
at once apply it once.
"""

from __future__ import annotations

import hashlib
import re
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
    # 2: the database refuses poison (costs, dated rows, endless reservations); voiding; one
    # team per database (its own roles, CONNECT for them only)
    r"""
DO $$
DECLARE
    db text := current_database();
BEGIN
    IF NOT pg_has_role(current_user, (SELECT d.datdba FROM pg_database d WHERE d.datname = db),
                       'MEMBER') THEN
        RAISE EXCEPTION 'only the owner of database % may migrate ACE''s schema', db
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

-- nothing lands or counts while the rows and the totals are put right
LOCK TABLE ace.runs, ace.totals, ace.reservations IN ACCESS EXCLUSIVE MODE;

-- Rows: the database stamps `ts` and `user_name` (members may not supply them: column
-- privileges below); a voided row is kept, marked, and no longer counts.
ALTER TABLE ace.runs
    ADD COLUMN voided_at timestamptz,
    ADD COLUMN voided_by text,
    ALTER COLUMN ts SET DEFAULT extract(epoch FROM now()),
    ALTER COLUMN user_name SET DEFAULT session_user;
UPDATE ace.runs SET voided_at = now(), voided_by = 'ace team migrate'
WHERE NOT (cost_usd >= 0 AND cost_usd < 1000)  -- NaN >= 0 in PostgreSQL: `< 1000` rejects it
   OR NOT (latency_ms >= 0 AND latency_ms < 1e9 AND input_tokens >= 0 AND output_tokens >= 0)
   OR NOT (ts >= 0 AND ts <= extract(epoch FROM now()) + 300);  -- dated ahead: a future day
ALTER TABLE ace.runs DROP CONSTRAINT IF EXISTS runs_cost_usd_check;
ALTER TABLE ace.runs ADD CONSTRAINT runs_cost_usd_range
    CHECK (voided_at IS NOT NULL OR (cost_usd >= 0 AND cost_usd < 1000));
ALTER TABLE ace.runs ADD CONSTRAINT runs_figures_range
    CHECK (voided_at IS NOT NULL
           OR (latency_ms >= 0 AND latency_ms < 1e9 AND input_tokens >= 0 AND output_tokens >= 0));

-- the totals again, from the rows that count (a NaN or an Infinity in a total never leaves it)
DELETE FROM ace.totals;
INSERT INTO ace.totals (subject, day, spent)
SELECT c.subject, c.day, sum(c.cost) FROM (
    SELECT '' AS subject, (to_timestamp(r.ts) AT TIME ZONE 'UTC')::date AS day, r.cost_usd AS cost
    FROM ace.runs r WHERE r.voided_at IS NULL AND r.cost_usd > 0
    UNION ALL
    SELECT r.user_name, (to_timestamp(r.ts) AT TIME ZONE 'UTC')::date, r.cost_usd
    FROM ace.runs r WHERE r.voided_at IS NULL AND r.cost_usd > 0
) AS c
GROUP BY c.subject, c.day;

-- Reservations: a sane amount, an hour at most
DELETE FROM ace.reservations WHERE NOT (amount >= 0 AND amount < 1000);
UPDATE ace.reservations SET expires_at = now() + interval '1 hour'
WHERE expires_at > now() + interval '1 hour';
ALTER TABLE ace.reservations DROP CONSTRAINT IF EXISTS reservations_amount_check;
ALTER TABLE ace.reservations ADD CONSTRAINT reservations_amount_range
    CHECK (amount >= 0 AND amount < 1000);

CREATE OR REPLACE FUNCTION ace.count_runs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ace, pg_temp AS $$
BEGIN
    DELETE FROM ace.reservations r USING new_rows n
    WHERE r.id = n.reservation_id AND r.user_name = n.user_name;
    INSERT INTO ace.totals AS t (subject, day, spent)
    SELECT c.subject, c.day, sum(c.cost) FROM (
        SELECT '' AS subject, (to_timestamp(n.ts) AT TIME ZONE 'UTC')::date AS day,
               n.cost_usd AS cost
        FROM new_rows n WHERE n.cost_usd > 0 AND n.voided_at IS NULL
        UNION ALL
        SELECT n.user_name, (to_timestamp(n.ts) AT TIME ZONE 'UTC')::date, n.cost_usd
        FROM new_rows n WHERE n.cost_usd > 0 AND n.voided_at IS NULL
    ) AS c
    GROUP BY c.subject, c.day
    ORDER BY c.subject, c.day
    ON CONFLICT (subject, day) DO UPDATE SET spent = t.spent + EXCLUDED.spent;
    RETURN NULL;
END $$;

-- As in version 1, with the amount checked (NaN too) and the time to live clamped to an hour.
CREATE OR REPLACE FUNCTION ace.reserve(
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
    IF p_amount IS NULL OR NOT (p_amount >= 0 AND p_amount < 1000) THEN
        RAISE EXCEPTION 'amount must be a number of dollars from 0 up to 1000';
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
    -- least/greatest: NaN sorts above everything, NULL is ignored; 0 s .. 1 hour
    INSERT INTO ace.reservations (id, user_name, amount, expires_at)
    VALUES (p_id, session_user, p_amount,
            now() + make_interval(secs => least(greatest(p_ttl_s, 0), 3600)));
    RETURN QUERY SELECT true, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::float8;
END $$;

CREATE OR REPLACE FUNCTION ace.recent_runs(per_model integer)
RETURNS TABLE (
    ts double precision, request_id text, task text, tier text, model text, provider text,
    input_tokens integer, output_tokens integer, cost_usd double precision,
    latency_ms double precision, outcome text, chain_position integer, attempt integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    SELECT r.ts, r.request_id, r.task, r.tier, r.model, r.provider, r.input_tokens,
           r.output_tokens, r.cost_usd, r.latency_ms, r.outcome, r.chain_position, r.attempt
    FROM (SELECT DISTINCT m.model FROM ace.runs m WHERE m.voided_at IS NULL) AS models
    CROSS JOIN LATERAL (
        SELECT * FROM ace.runs x WHERE x.model = models.model AND x.voided_at IS NULL
        ORDER BY x.ts DESC, x.id DESC LIMIT per_model
    ) AS r
    ORDER BY r.ts, r.id;
$$;

CREATE OR REPLACE FUNCTION ace.others_since(p_after bigint, p_limit integer)
RETURNS TABLE (
    id bigint, ts double precision, request_id text, task text, tier text, model text,
    provider text, input_tokens integer, output_tokens integer, cost_usd double precision,
    latency_ms double precision, outcome text, chain_position integer, attempt integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    SELECT r.id, r.ts, r.request_id, r.task, r.tier, r.model, r.provider, r.input_tokens,
           r.output_tokens, r.cost_usd, r.latency_ms, r.outcome, r.chain_position, r.attempt
    FROM ace.runs r
    WHERE r.id > p_after AND r.user_name <> session_user AND r.voided_at IS NULL
    ORDER BY r.id LIMIT p_limit;
$$;

-- An admin voids a row (by its number or its row_id): it stays, marked, and leaves its day's
-- totals. Voiding twice changes nothing; `newly` says which call did it.
CREATE FUNCTION ace.void_run(p_run text)
RETURNS TABLE (
    run_id bigint, run_user text, run_cost double precision, run_ts double precision,
    run_voided_at timestamptz, run_voided_by text, newly boolean
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
DECLARE
    v_id bigint;
    r ace.runs%ROWTYPE;
    fresh boolean := false;
BEGIN
    IF p_run ~ '^[0-9]{1,18}$' THEN
        v_id := p_run::bigint;
    END IF;
    SELECT * INTO r FROM ace.runs x WHERE x.row_id = p_run OR x.id = v_id
    ORDER BY (x.row_id = p_run) DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF r.voided_at IS NULL THEN
        UPDATE ace.runs x SET voided_at = now(), voided_by = session_user WHERE x.id = r.id
        RETURNING * INTO r;
        IF r.cost_usd > 0 THEN
            UPDATE ace.totals t SET spent = greatest(t.spent - r.cost_usd, 0)
            WHERE t.subject IN ('', r.user_name)
              AND t.day = (to_timestamp(r.ts) AT TIME ZONE 'UTC')::date;
        END IF;
        fresh := true;
    END IF;
    RETURN QUERY SELECT r.id, r.user_name, r.cost_usd, r.ts, r.voided_at, r.voided_by, fresh;
END $$;

-- An admin ends a reservation now (a runaway process's, say): its money is free again.
CREATE FUNCTION ace.void_reservation(p_id text)
RETURNS TABLE (res_user text, res_amount double precision)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = ace, pg_temp AS $$
    DELETE FROM ace.reservations r WHERE r.id = p_id RETURNING r.user_name, r.amount;
$$;

CREATE TABLE ace.team_roles (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    member_role text NOT NULL,
    admin_role text NOT NULL
);

-- One team per database: its own member and admin roles (roles are cluster-wide, so a shared
-- `ace_member` let one team's people into another's database); CONNECT for them only.
DO $$
DECLARE
    db text := current_database();
    suffix text := CASE WHEN octet_length('ace_team_admin_' || current_database()) <= 63
                        THEN current_database() ELSE md5(current_database()) END;
    member text := 'ace_member_' || suffix;
    admin text := 'ace_team_admin_' || suffix;
    upgrade boolean := coalesce(current_setting('ace.migrating_from', true), '0') <> '0';
    legacy text;
BEGIN
    BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', member);
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
    BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', admin);
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
    EXECUTE format('GRANT %I TO %I', member, admin);
    INSERT INTO ace.team_roles (member_role, admin_role) VALUES (member, admin);

    -- the shared roles of version 1 lose their rights here; on an upgrade they stay members
    -- of this team's roles, so that an existing set-up goes on working
    FOREACH legacy IN ARRAY ARRAY['ace_member', 'ace_team_admin'] LOOP
        CONTINUE WHEN to_regrole(legacy) IS NULL;
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA ace FROM %I', legacy);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA ace FROM %I', legacy);
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ace FROM %I', legacy);
        EXECUTE format('REVOKE ALL ON SCHEMA ace FROM %I', legacy);
    END LOOP;
    DROP POLICY runs_insert_own ON ace.runs;
    DROP POLICY runs_read ON ace.runs;
    DROP POLICY budgets_read ON ace.budgets;
    DROP POLICY budgets_admin ON ace.budgets;
    IF upgrade AND to_regrole('ace_member') IS NOT NULL THEN
        EXECUTE format('GRANT %I TO ace_member', member);
    END IF;
    IF upgrade AND to_regrole('ace_team_admin') IS NOT NULL THEN
        EXECUTE format('GRANT %I TO ace_team_admin', admin);
    END IF;

    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I', db, member, admin);
    EXECUTE format('GRANT USAGE ON SCHEMA ace TO %I', member);

    EXECUTE format($q$CREATE POLICY runs_insert_own ON ace.runs FOR INSERT TO %I
        WITH CHECK (user_name = session_user)$q$, member);
    EXECUTE format($q$CREATE POLICY runs_read ON ace.runs FOR SELECT TO %I
        USING (user_name = session_user OR pg_has_role(current_user, %L, 'MEMBER'))$q$,
        member, admin);
    -- members name only the columns ACE sends: not ts, user_name, id or voided_*
    EXECUTE format($q$GRANT SELECT, INSERT (row_id, request_id, task, tier, model, provider,
        input_tokens, output_tokens, cost_usd, latency_ms, outcome, chain_position, attempt,
        reservation_id) ON ace.runs TO %I$q$, member);
    EXECUTE format('GRANT USAGE ON SEQUENCE ace.runs_id_seq TO %I', member);

    EXECUTE format($q$CREATE POLICY budgets_read ON ace.budgets FOR SELECT TO %I
        USING (subject IN ('', '*', session_user) OR pg_has_role(current_user, %L, 'MEMBER'))$q$,
        member, admin);
    EXECUTE format($q$CREATE POLICY budgets_admin ON ace.budgets FOR ALL TO %I
        USING (true) WITH CHECK (true)$q$, admin);
    EXECUTE format('GRANT SELECT ON ace.budgets, ace.schema_version, ace.team_roles TO %I',
        member);
    EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ace.budgets TO %I', admin);
    EXECUTE format('GRANT SELECT ON ace.reservations TO %I', admin);

    REVOKE ALL ON FUNCTION ace.void_run(text) FROM PUBLIC;
    REVOKE ALL ON FUNCTION ace.void_reservation(text) FROM PUBLIC;
    EXECUTE format($q$GRANT EXECUTE ON FUNCTION ace.last_run_id(),
        ace.others_since(bigint, integer), ace.budget_status(double precision, double precision),
        ace.reserve(text, double precision, double precision, double precision, double precision),
        ace.release(text), ace.recent_runs(integer) TO %I$q$, member);
    EXECUTE format('GRANT EXECUTE ON FUNCTION ace.void_run(text), ace.void_reservation(text) TO %I',
        admin);
END $$;
""",
)
SCHEMA_VERSION = len(MIGRATIONS)


def team_roles(database: str) -> tuple[str, str]:
    """The (member, admin) roles `ace team migrate` creates for `database`, as migration 2 names
    them: `ace_member_<db>` and `ace_team_admin_<db>`, or with the name's md5 when too long."""
    suffix = database
    if len(f"ace_team_admin_{database}".encode()) > 63:
        suffix = hashlib.md5(database.encode()).hexdigest()  # a name, not a secret
    return f"ace_member_{suffix}", f"ace_team_admin_{suffix}"


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


async def migrate(conn: Any, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version `upto` (SCHEMA_VERSION) on `conn` (an autocommit psycopg
    AsyncConnection).

    Returns the number of migrations applied. Idempotent; two callers at once apply each migration
    once (advisory lock, version checked again under it). Raises psycopg errors as they come.
    """
    target = min(upto, SCHEMA_VERSION)
    if await current_version(conn) == target:
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
        for number in range(version + 1, target + 1):
            async with conn.transaction():
                # what the database was before this run: an upgrade keeps version 1's roles working
                await conn.execute(
                    "SELECT set_config('ace.migrating_from', %s, true)", (str(version),)
                )
                await conn.execute(MIGRATIONS[number - 1])
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS ace.schema_version ("
                    " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                if number == 1:  # later versions grant it to the team's own member role
                    await conn.execute("GRANT SELECT ON ace.schema_version TO ace_member")
                await conn.execute(
                    "INSERT INTO ace.schema_version (version) VALUES (%s)", (number,)
                )
            applied += 1
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_MIGRATE,))


def sql_name(name: str) -> str:
    """A role's name as SQL needs it: quoted unless it is a plain lower-case identifier."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


async def roles_in(conn: Any) -> tuple[str, str]:
    """The (member, admin) roles of the team whose database `conn` is on (schema version 2+)."""
    cur = await conn.execute("SELECT member_role, admin_role FROM ace.team_roles")
    row = await cur.fetchone()
    if row is None:
        raise MigrationNeeded("The team ledger's schema has no team roles; run `ace team migrate`.")
    return str(row[0]), str(row[1])
