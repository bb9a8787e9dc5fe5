/**
 * The status bar's words and colour from the server's `ace/budget` notification (server/status.py):
 * "ACE $0.42 / $5.00", warning from 80% of the daily or monthly budget, error from 100%.
 */

import { duration, usd } from "./money";

export interface LastCall {
  readonly model: string;
  readonly costUsd: number;
  readonly latencyMs: number;
}

/** The whole team's figures, in team mode (a shared ledger on PostgreSQL). */
export interface TeamFigures {
  readonly spentToday: number;
  readonly dailyLimit: number | null;
  readonly spentMonth: number;
  readonly monthlyLimit: number | null;
}

/** Team mode while the database is unreachable: what is left of the offline allowance. */
export interface Offline {
  readonly allowanceUsd: number;
  readonly usedUsd: number;
}

/** The payload of `ace/budget` and of the `ace.budget` command. */
export interface Budget {
  readonly tier: string;
  readonly user: string;
  readonly spentToday: number;
  readonly dailyLimit: number | null;
  readonly spentMonth: number;
  readonly monthlyLimit: number | null;
  readonly lastCall: LastCall | null;
  readonly ledger?: string;
  readonly ledgerKind?: string;
  readonly team?: TeamFigures;
  readonly offline?: Offline;
}

export type StatusLevel = "normal" | "warning" | "error";

/** The server's warning thresholds (server/status.py THRESHOLDS). */
export const WARNING_SHARE = 0.8;
export const ERROR_SHARE = 1.0;

export function statusText(budget: Budget): string {
  const limit = budget.dailyLimit ? ` / ${usd(budget.dailyLimit)}` : "";
  return `ACE ${usd(budget.spentToday)}${limit}`;
}

/** The share of its budget the fuller of today and this month has spent; 0 without budgets. */
export function spentShare(budget: Budget): number {
  const shares = [
    [budget.spentToday, budget.dailyLimit],
    [budget.spentMonth, budget.monthlyLimit],
  ]
    // A limit of 0 or none is "no budget", as the server's warnings treat it.
    .filter((pair): pair is [number, number] => typeof pair[1] === "number" && pair[1] > 0)
    .map(([spent, limit]) => spent / limit);
  return Math.max(0, ...shares);
}

export function statusLevel(budget: Budget): StatusLevel {
  const share = spentShare(budget);
  if (share >= ERROR_SHARE) return "error";
  if (share >= WARNING_SHARE) return "warning";
  return "normal";
}

function against(spent: number, limit: number | null): string {
  return limit ? `${usd(spent)} of ${usd(limit)}` : `${usd(spent)} (no budget)`;
}

/** The tooltip, one line each: today, this month, tier and user, the last call. */
export function tooltipLines(budget: Budget): string[] {
  const lines = [
    `Today: ${against(budget.spentToday, budget.dailyLimit)}`,
    `This month: ${against(budget.spentMonth, budget.monthlyLimit)}`,
    `Tier: ${budget.tier} · user ${budget.user}`,
  ];
  const last = budget.lastCall;
  lines.push(
    last ? `Last call: ${last.model} · ${usd(last.costUsd)} · ${duration(last.latencyMs)}` : "Last call: none yet",
  );
  if (budget.team) {
    lines.push(`Team today: ${against(budget.team.spentToday, budget.team.dailyLimit)}`);
  }
  if (budget.ledger === "offline" && budget.ledgerKind === "team") {
    const o = budget.offline;
    const left = o ? `: offline allowance ${usd(o.usedUsd)} of ${usd(o.allowanceUsd)} used` : "";
    lines.push(`Team ledger unreachable, usage kept locally${left}`);
  } else if (budget.ledger === "offline") {
    lines.push("Usage ledger offline: spend is not being recorded");
  }
  return lines;
}

/** A payload from the wire, or undefined when it is not one (an older or newer server). */
export function asBudget(value: unknown): Budget | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const num = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
  const limit = (x: unknown): boolean => x === null || x === undefined || num(x);
  if (!num(v.spentToday) || !num(v.spentMonth) || !limit(v.dailyLimit) || !limit(v.monthlyLimit)) {
    return undefined;
  }
  return {
    tier: text(v.tier),
    user: text(v.user),
    spentToday: v.spentToday,
    dailyLimit: (v.dailyLimit as number | null | undefined) ?? null,
    spentMonth: v.spentMonth,
    monthlyLimit: (v.monthlyLimit as number | null | undefined) ?? null,
    lastCall: asLastCall(v.lastCall),
    ledger: typeof v.ledger === "string" ? v.ledger : undefined,
    ...optional("ledgerKind", typeof v.ledgerKind === "string" ? v.ledgerKind : undefined),
    ...optional("team", asTeam(v.team)),
    ...optional("offline", asOffline(v.offline)),
  };
}

/** `{key: value}`, or nothing when value is undefined (team-mode keys only some servers send). */
function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function asTeam(value: unknown): TeamFigures | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.spentToday !== "number" || typeof v.spentMonth !== "number") return undefined;
  const limit = (x: unknown): number | null => (typeof x === "number" ? x : null);
  return {
    spentToday: v.spentToday,
    dailyLimit: limit(v.dailyLimit),
    spentMonth: v.spentMonth,
    monthlyLimit: limit(v.monthlyLimit),
  };
}

function asOffline(value: unknown): Offline | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.allowanceUsd !== "number" || typeof v.usedUsd !== "number") return undefined;
  return { allowanceUsd: v.allowanceUsd, usedUsd: v.usedUsd };
}

function asLastCall(value: unknown): LastCall | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.costUsd !== "number" || typeof v.latencyMs !== "number") return null;
  return { model: text(v.model), costUsd: v.costUsd, latencyMs: v.latencyMs };
}

/** A name from the wire, or "?" when it is missing or not a string (never "[object Object]"). */
function text(value: unknown): string {
  return typeof value === "string" ? value : "?";
}
