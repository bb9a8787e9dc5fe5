/**
 * The "ACE: Show Usage" page from the server's `ace.usage` answer (server/cli_usage.py `report`):
 * today and this month against the budgets, spend by model and task as an inline SVG bar chart,
 * the same figures as a table, and the server's downgrade suggestions.
 */

import { ERROR_SHARE, WARNING_SHARE } from "./budget";
import { commandLink, escapeHtml } from "./html";
import { duration, usd } from "./money";

export interface Period {
  readonly spent_usd: number;
  readonly limit_usd: number | null;
}

export interface UsageLine {
  readonly model: string;
  readonly task: string;
  readonly calls: number;
  readonly ok: number;
  readonly failures: number;
  readonly cancelled: number;
  readonly cost_usd: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly p50_ms: number | null;
  readonly p95_ms: number | null;
}

export interface Suggestion {
  readonly task: string;
  readonly model: string;
  readonly instead: string;
  readonly reason: string;
}

export interface UsageReport {
  readonly user: string;
  readonly tier: string;
  readonly today: Period;
  readonly month: Period;
  readonly per_request_limit_usd: number | null;
  readonly by_model_task: readonly UsageLine[];
  readonly calls_today: number;
  readonly suggestions: readonly Suggestion[];
  readonly ledger: string;
}

const WIDTH = 640;
const LABEL = 230; // the left column holding the labels
const ROW = 24;
const BAR = 16;

function levelClass(share: number): string {
  return share >= ERROR_SHARE ? "bar error" : share >= WARNING_SHARE ? "bar warning" : "bar";
}

/** Two bars, today and this month, each against its budget (a full track is the budget). */
export function budgetChart(today: Period, month: Period): string {
  const rows = [
    ["Today", today],
    ["This month", month],
  ] as const;
  const track = WIDTH - LABEL - 10;
  const bars = rows.map(([label, p], i) => {
    const y = i * ROW;
    const share = p.limit_usd ? p.spent_usd / p.limit_usd : 0;
    const w = p.limit_usd ? Math.min(1, share) * track : 0;
    const text = p.limit_usd
      ? `${usd(p.spent_usd)} of ${usd(p.limit_usd)} (${Math.round(share * 100)}%)`
      : `${usd(p.spent_usd)}, no budget`;
    return `<text x="0" y="${y + 13}">${escapeHtml(label)}</text>
<rect class="track" x="${LABEL}" y="${y}" width="${track}" height="${BAR}"/>
<rect class="${levelClass(share)}" x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}"/>
<text x="${LABEL + 6}" y="${y + 13}">${escapeHtml(text)}</text>`;
  });
  return svg(rows.length * ROW, "Spend against budgets", bars.join("\n"));
}

/** One bar per model and task, by cost; the longest bar is the biggest spender. */
export function spendChart(lines: readonly UsageLine[]): string {
  const sorted = [...lines].sort((a, b) => b.cost_usd - a.cost_usd);
  const max = Math.max(0, ...sorted.map((l) => l.cost_usd));
  const track = WIDTH - LABEL - 90; // room for the amount after the bar
  const bars = sorted.map((l, i) => {
    const y = i * ROW;
    const w = max > 0 ? (l.cost_usd / max) * track : 0;
    return `<text x="0" y="${y + 13}">${escapeHtml(`${l.model} · ${l.task}`)}</text>
<rect class="bar" x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}"/>
<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + 13}">${escapeHtml(usd(l.cost_usd))}</text>`;
  });
  return svg(Math.max(1, sorted.length) * ROW, "Spend by model and task this month", bars.join("\n"));
}

function svg(height: number, label: string, content: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(label)}" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
${content}
</svg>`;
}

function ms(v: number | null): string {
  return v === null ? "-" : duration(v);
}

function lineRow(l: UsageLine): string {
  const cells = [
    [l.model, ""],
    [l.task, ""],
    [String(l.calls), "num"],
    [String(l.ok), "num"],
    [String(l.failures), "num"],
    [String(l.cancelled), "num"],
    [usd(l.cost_usd), "num"],
    [`${l.input_tokens.toLocaleString("en-US")} / ${l.output_tokens.toLocaleString("en-US")}`, "num"],
    [ms(l.p50_ms), "num"],
    [ms(l.p95_ms), "num"],
  ];
  return `<tr>${cells.map(([v, c]) => `<td${c ? ` class="${c}"` : ""}>${escapeHtml(v)}</td>`).join("")}</tr>`;
}

export function usageBody(r: UsageReport): string {
  const perRequest = r.per_request_limit_usd === null ? "none" : usd(r.per_request_limit_usd);
  const head = `<h1>ACE usage</h1>
<p class="muted">${escapeHtml(r.user)} · ${escapeHtml(r.tier)} tier · ${r.calls_today} calls today · per-request cap ${escapeHtml(perRequest)} · ${commandLink("ace.showUsage", "Refresh")}</p>
${budgetChart(r.today, r.month)}`;
  if (r.by_model_task.length === 0) {
    return `${head}\n<h2>This month</h2>\n<p class="muted">No calls this month.</p>`;
  }
  const suggestions = r.suggestions.length
    ? `<h2>Suggestions</h2><ul>${r.suggestions
        .map(
          (s) =>
            `<li>For ${escapeHtml(s.task)}, try <b>${escapeHtml(s.instead)}</b> instead of ${escapeHtml(s.model)}: ${escapeHtml(s.reason)}</li>`,
        )
        .join("")}</ul>`
    : "";
  return `${head}
<h2>This month, by model and task</h2>
${spendChart(r.by_model_task)}
<table>
<thead><tr><th>model</th><th>task</th><th class="num">calls</th><th class="num">ok</th><th class="num">failed</th><th class="num">cancelled</th><th class="num">cost</th><th class="num">tokens in / out</th><th class="num">p50</th><th class="num">p95</th></tr></thead>
<tbody>
${r.by_model_task.map(lineRow).join("\n")}
</tbody>
</table>
${suggestions}
<p class="muted">Ledger: ${escapeHtml(r.ledger)}</p>`;
}

/** The answer as a report, or undefined when it is not one. */
export function asUsageReport(value: unknown): UsageReport | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Partial<UsageReport>;
  const period = (p: unknown): p is Period =>
    typeof p === "object" && p !== null && typeof (p as Period).spent_usd === "number";
  if (!period(v.today) || !period(v.month) || !Array.isArray(v.by_model_task)) return undefined;
  return {
    user: String(v.user ?? "?"),
    tier: String(v.tier ?? "?"),
    today: { spent_usd: v.today.spent_usd, limit_usd: v.today.limit_usd ?? null },
    month: { spent_usd: v.month.spent_usd, limit_usd: v.month.limit_usd ?? null },
    per_request_limit_usd: v.per_request_limit_usd ?? null,
    by_model_task: v.by_model_task.map((l: UsageLine) => ({
      ...l,
      calls: l.calls ?? 0,
      ok: l.ok ?? 0,
      failures: l.failures ?? 0,
      cancelled: l.cancelled ?? 0,
      cost_usd: l.cost_usd ?? 0,
      input_tokens: l.input_tokens ?? 0,
      output_tokens: l.output_tokens ?? 0,
      p50_ms: l.p50_ms ?? null,
      p95_ms: l.p95_ms ?? null,
    })),
    calls_today: typeof v.calls_today === "number" ? v.calls_today : 0,
    suggestions: Array.isArray(v.suggestions) ? v.suggestions : [],
    ledger: String(v.ledger ?? ""),
  };
}
