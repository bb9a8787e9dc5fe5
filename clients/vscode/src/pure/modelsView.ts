/** The "ACE: Show Models" page: one row per model of the server's `ace.models` answer. */

import { duration, usd } from "./money";
import { commandLink, escapeHtml } from "./html";

/** One row of `ace.models` (server/cli_models.py `model_rows`). */
export interface ModelRow {
  readonly id: string;
  readonly provider: string;
  readonly wire_name?: string;
  readonly input_per_1m: number;
  readonly output_per_1m: number;
  readonly context_window: number;
  readonly max_output?: number;
  readonly tasks?: readonly string[];
  readonly available: boolean;
  readonly unavailable_reason: string | null;
  readonly circuit: string;
  readonly calls: number;
  readonly p50_ms: number | null;
  readonly success_rate: number | null;
}

function price(perMillion: number): string {
  return perMillion === 0 ? "free" : usd(perMillion);
}

function circuitClass(state: string): string {
  return state === "closed" ? "ok" : state === "open" ? "bad" : "warn";
}

function row(m: ModelRow): string {
  const key = m.available
    ? `<td class="ok">yes</td>`
    : `<td class="warn" title="${escapeHtml(m.unavailable_reason ?? "")}">needs setup</td>`;
  const success = m.success_rate === null ? "-" : `${Math.round(m.success_rate * 100)}% of ${m.calls}`;
  return `<tr>
<td>${escapeHtml(m.provider)}</td>
<td title="${escapeHtml((m.tasks ?? []).join(", "))}">${escapeHtml(m.id)}</td>
<td class="num">${escapeHtml(price(m.input_per_1m))} / ${escapeHtml(price(m.output_per_1m))}</td>
<td class="num">${escapeHtml(m.context_window.toLocaleString("en-US"))}</td>
${key}
<td class="${circuitClass(m.circuit)}">${escapeHtml(m.circuit)}</td>
<td class="num">${m.p50_ms === null ? "-" : escapeHtml(duration(m.p50_ms))}</td>
<td class="num">${escapeHtml(success)}</td>
</tr>`;
}

export function modelsBody(rows: readonly ModelRow[]): string {
  const reasons = [...new Set(rows.map((r) => r.unavailable_reason).filter((r): r is string => !!r))];
  const notes = reasons.length
    ? `<h2>Needs setup</h2><ul>${reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>
<p>${commandLink("ace.setApiKey", "Set an API key")}</p>`
    : "";
  return `<h1>ACE models</h1>
<p class="muted">${rows.length} models · prices per 1M tokens, input / output · ${commandLink("ace.showModels", "Refresh")}</p>
<table>
<thead><tr><th>provider</th><th>model</th><th class="num">price</th><th class="num">context</th><th>key</th><th>circuit</th><th class="num">p50</th><th class="num">success</th></tr></thead>
<tbody>
${rows.map(row).join("\n")}
</tbody>
</table>
${notes}`;
}

/** The answer as rows, or undefined when it is not a list of models. */
export function asModelRows(value: unknown): ModelRow[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const ok = value.every(
    (r) =>
      typeof r === "object" &&
      r !== null &&
      typeof (r as ModelRow).id === "string" &&
      typeof (r as ModelRow).provider === "string" &&
      typeof (r as ModelRow).input_per_1m === "number" &&
      typeof (r as ModelRow).output_per_1m === "number",
  );
  if (!ok) return undefined;
  return value.map((r: ModelRow) => ({
    ...r,
    context_window: typeof r.context_window === "number" ? r.context_window : 0,
    available: r.available === true,
    unavailable_reason: r.unavailable_reason ?? null,
    circuit: String(r.circuit ?? "unknown"),
    calls: typeof r.calls === "number" ? r.calls : 0,
    p50_ms: typeof r.p50_ms === "number" ? r.p50_ms : null,
    success_rate: typeof r.success_rate === "number" ? r.success_rate : null,
  }));
}
