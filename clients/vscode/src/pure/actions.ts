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
 * → "devstral-small · ~$0.0004"); empty when the server did not know them yet.
 */
export function titleModel(title: string): string {
  const m = /^[^·]*·\s*([^:]+?)\s*(?::|$)/.exec(title);
  return m?.[1] ?? "";
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
