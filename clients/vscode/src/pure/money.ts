/** Dollars as the server writes them (orchestrator/budget.py `usd`): "$0.42", "$0.0312", "$12.00". */

export function usd(amount: number): string {
  const text = amount === 0 || Math.abs(amount) >= 0.0001 ? amount.toFixed(4) : amount.toFixed(6);
  const [whole, frac = ""] = text.split(".");
  return `$${whole}.${frac.replace(/0+$/, "").padEnd(2, "0")}`;
}

/** "1.2 s" or "850 ms". */
export function duration(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
