import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { asBudget, statusLevel, statusText, tooltipLines, type Budget } from "../src/pure/budget";
import { duration, usd } from "../src/pure/money";

const base: Budget = {
  tier: "pro",
  user: "ana",
  spentToday: 0.42,
  dailyLimit: 5,
  spentMonth: 3.1,
  monthlyLimit: 50,
  lastCall: null,
  ledger: "ok",
};

describe("usd (as the server's orchestrator.budget.usd)", () => {
  const table: [number, string][] = [
    [0, "$0.00"],
    [0.42, "$0.42"],
    [5, "$5.00"],
    [12, "$12.00"],
    [0.0312, "$0.0312"],
    [0.01, "$0.01"],
    [0.5, "$0.50"],
    [0.00004, "$0.00004"],
    [123.456789, "$123.4568"],
  ];
  for (const [amount, text] of table) it(`${amount} → ${text}`, () => assert.equal(usd(amount), text));
});

describe("duration", () => {
  it("ms below a second, seconds above", () => {
    assert.equal(duration(850.4), "850 ms");
    assert.equal(duration(1_234), "1.2 s");
  });
});

describe("statusText", () => {
  const table: [string, Partial<Budget>, string][] = [
    ["daily budget", {}, "ACE $0.42 / $5.00"],
    ["no daily budget", { dailyLimit: null }, "ACE $0.42"],
    ["zero budget means none", { dailyLimit: 0 }, "ACE $0.42"],
    ["nothing spent", { spentToday: 0, dailyLimit: 0.5 }, "ACE $0.00 / $0.50"],
    ["tiny spend", { spentToday: 0.0004 }, "ACE $0.0004 / $5.00"],
  ];
  for (const [name, change, text] of table) {
    it(name, () => assert.equal(statusText({ ...base, ...change }), text));
  }
});

describe("statusLevel", () => {
  const table: [string, Partial<Budget>, string][] = [
    ["well under", {}, "normal"],
    ["79% of daily", { spentToday: 3.95 }, "normal"],
    ["80% of daily", { spentToday: 4 }, "warning"],
    ["99% of daily", { spentToday: 4.95 }, "warning"],
    ["100% of daily", { spentToday: 5 }, "error"],
    ["over daily", { spentToday: 7 }, "error"],
    ["85% of monthly", { spentMonth: 42.5 }, "warning"],
    ["100% of monthly", { spentMonth: 50 }, "error"],
    ["no budgets", { dailyLimit: null, monthlyLimit: null, spentToday: 99 }, "normal"],
    ["zero budget is no budget", { dailyLimit: 0, spentToday: 1 }, "normal"],
  ];
  for (const [name, change, level] of table) {
    it(name, () => assert.equal(statusLevel({ ...base, ...change }), level));
  }
});

describe("tooltipLines", () => {
  it("month, tier and last call", () => {
    const lines = tooltipLines({ ...base, lastCall: { model: "devstral-small", costUsd: 0.0031, latencyMs: 1234 } });
    assert.deepEqual(lines, [
      "Today: $0.42 of $5.00",
      "This month: $3.10 of $50.00",
      "Tier: pro · user ana",
      "Last call: devstral-small · $0.0031 · 1.2 s",
    ]);
  });

  it("no call yet, no budget, ledger offline", () => {
    const lines = tooltipLines({ ...base, monthlyLimit: null, ledger: "offline" });
    assert.equal(lines[1], "This month: $3.10 (no budget)");
    assert.equal(lines[3], "Last call: none yet");
    assert.match(lines[4] ?? "", /offline/);
  });
});

describe("asBudget", () => {
  it("reads the server's payload", () => {
    const wire = {
      tier: "free",
      user: "local",
      spentToday: 0,
      dailyLimit: 0.5,
      spentMonth: 0,
      monthlyLimit: 5,
      lastCall: { model: "local", costUsd: 0, latencyMs: 12.5 },
      ledger: "ok",
    };
    assert.deepEqual(asBudget(wire), wire);
  });

  it("reads team mode, online and offline", () => {
    const team = { spentToday: 4, dailyLimit: 20, spentMonth: 40, monthlyLimit: null, reserved: 0.1 };
    const online = asBudget({ spentToday: 1, spentMonth: 2, ledger: "ok", ledgerKind: "team", team });
    assert.deepEqual(online?.team, { spentToday: 4, dailyLimit: 20, spentMonth: 40, monthlyLimit: null });
    assert.ok(tooltipLines(online).includes("Team today: $4.00 of $20.00"));
    const offline = asBudget({
      spentToday: 1,
      spentMonth: 2,
      ledger: "offline",
      ledgerKind: "team",
      offline: { reason: "The team ledger does not answer.", allowanceUsd: 0.25, usedUsd: 0.05 },
    });
    const lines = tooltipLines(offline!);
    assert.equal(lines.at(-1), "Team ledger unreachable, usage kept locally: offline allowance $0.05 of $0.25 used");
    assert.ok(!lines.some((l) => l.includes("not being recorded")));
  });

  it("refuses what is not a budget", () => {
    for (const wire of [
      null,
      3,
      "x",
      {},
      { spentToday: "1", spentMonth: 0 },
      { spentToday: 1, spentMonth: 1, dailyLimit: "5" },
    ]) {
      assert.equal(asBudget(wire), undefined, JSON.stringify(wire));
    }
  });

  it("a malformed lastCall is no last call", () => {
    const b = asBudget({ spentToday: 1, spentMonth: 2, lastCall: { model: "x" } });
    assert.equal(b?.lastCall, null);
    assert.equal(b?.dailyLimit, null);
  });
});
