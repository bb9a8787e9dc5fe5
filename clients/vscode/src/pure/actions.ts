/**
 * What the commands make of the server's answers: which code action is "fix the whole file", and
 * the sentence a review ends with.
 */

import { usd } from "./money";

export const FIX_ALL_KIND = "source.fixAll.ace";
export const QUICK_FIX_KIND = "quickfix";
export const REVIEW_COMMAND = "ace.review";

interface ActionLike {
  readonly title: string;
  readonly kind?: string;
}

/** ACE's fix-all action, else (one diagnostic) its first "Fix with ACE" quick fix. */
export function pickFileFix<A extends ActionLike>(actions: readonly A[]): A | undefined {
  return (
    actions.find((a) => a.kind === FIX_ALL_KIND) ??
    actions.find((a) => a.kind === QUICK_FIX_KIND && a.title.startsWith("Fix with ACE"))
  );
}

/**
 * The model and price a title names ("Fix all with ACE (2 diagnostics) · devstral-small · ~$0.0004"
 * → "devstral-small · ~$0.0004"); empty when the server did not know them yet. Only for servers
 * older than `data.model`: see `actionModel`.
 */
export function titleModel(title: string): string {
  const m = /^[^·]*·\s*([^:]+?)\s*(?::|$)/.exec(title);
  return m?.[1] ?? "";
}

/** What the server quotes for a code action in its `data`: the model id and estimated USD. */
export interface Quote {
  readonly model: string | null;
  readonly costUsd: number | null;
}

const MAX_MODEL_CHARS = 200; // a model id longer than this is not one

/**
 * The quote an action's `data` carries ({"model": id | null, "costUsd": USD | null}, both always
 * sent by the server since it added them); undefined when `data` has no "model" key (an older
 * server). A value of the wrong type counts as unknown (null), never as text to show.
 */
export function dataQuote(data: unknown): Quote | undefined {
  if (typeof data !== "object" || data === null || Array.isArray(data) || !("model" in data)) return undefined;
  const { model, costUsd } = data as { model?: unknown; costUsd?: unknown };
  const id = typeof model === "string" && model && model.length <= MAX_MODEL_CHARS ? model : null;
  const cost = typeof costUsd === "number" && Number.isFinite(costUsd) && costUsd >= 0 ? costUsd : null;
  return { model: id, costUsd: cost };
}

/** "devstral-small · ~$0.0004", "local · free", "gpt-4o" (no estimate), or "" (no model). */
export function quoteText(quote: Quote): string {
  if (quote.model === null) return "";
  if (quote.costUsd === null) return quote.model;
  return `${quote.model} · ${quote.costUsd === 0 ? "free" : `~${usd(quote.costUsd)}`}`;
}

/**
 * The model and price to show while an action runs: from its `data` (the server's contract),
 * else, from a server that predates it, parsed out of the title.
 */
export function actionModel(action: { readonly title: string; readonly data?: unknown }): string {
  const quote = dataQuote(action.data);
  return quote === undefined ? titleModel(action.title) : quoteText(quote);
}

/** The answer of `ace.review` (server/review.py `summary`). */
export interface ReviewSummary {
  readonly model: string;
  readonly costUsd: number;
  readonly cached: boolean;
  readonly findings: readonly {
    readonly line: number;
    readonly endLine: number;
    readonly severity: string;
    readonly message: string;
    readonly hasPatch: boolean;
  }[];
}

export function reviewMessage(summary: ReviewSummary): string {
  const how = summary.cached ? `${summary.model}, cached` : `${summary.model}, ${usd(summary.costUsd)}`;
  const n = summary.findings.length;
  if (n === 0) return `ACE review (${how}): no findings.`;
  const counts = new Map<string, number>();
  for (const f of summary.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  const parts = [...counts].map(([severity, count]) => `${count} ${severity}`).join(", ");
  const fixes = summary.findings.filter((f) => f.hasPatch).length;
  const fixable = fixes ? `; ${fixes} with a quick fix` : "";
  return `ACE review (${how}): ${n} finding${n === 1 ? "" : "s"} (${parts})${fixable}, shown as diagnostics.`;
}

export function isReviewSummary(value: unknown): value is ReviewSummary {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<ReviewSummary>;
  return typeof v.model === "string" && Array.isArray(v.findings);
}
