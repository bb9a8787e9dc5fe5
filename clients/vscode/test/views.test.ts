import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  actionModel,
  dataQuote,
  isReviewSummary,
  pickFileFix,
  quoteText,
  reviewMessage,
  titleModel,
} from "../src/pure/actions";
import { escapeHtml, page } from "../src/pure/html";
import { asModelRows, modelsBody } from "../src/pure/modelsView";
import { asUsageReport, budgetChart, usageBody } from "../src/pure/usageView";

const model = {
  id: "devstral-small",
  provider: "mistral",
  wire_name: "devstral-small-2505",
  input_per_1m: 0.1,
  output_per_1m: 0.3,
  context_window: 128000,
  max_output: 8192,
  tasks: ["AUTO_FIX"],
  available: false,
  unavailable_reason: "MISTRAL_API_KEY is not set",
  circuit: "closed",
  calls: 20,
  p50_ms: 850,
  success_rate: 0.95,
};

const usage = {
  user: "ana",
  tier: "pro",
  today: { spent_usd: 4.2, limit_usd: 5 },
  month: { spent_usd: 10, limit_usd: 50 },
  per_request_limit_usd: 0.1,
  by_model_task: [
    {
      model: "gpt-4o",
      task: "AUTO_FIX",
      calls: 3,
      ok: 2,
      failures: 1,
      cancelled: 0,
      cost_usd: 0.03,
      input_tokens: 3000,
      output_tokens: 900,
      p50_ms: 1200,
      p95_ms: 2500,
    },
    {
      model: "local",
      task: "CODE_REVIEW",
      calls: 5,
      ok: 5,
      failures: 0,
      cancelled: 0,
      cost_usd: 0,
      input_tokens: 100,
      output_tokens: 50,
      p50_ms: null,
      p95_ms: null,
    },
  ],
  calls_today: 8,
  suggestions: [
    {
      task: "AUTO_FIX",
      model: "gpt-4o",
      instead: "devstral-small",
      reason: "devstral-small is cheaper <and> as good.",
    },
  ],
  ledger: "/home/ana/.local/share/ace/ledger.sqlite3",
};

describe("page", () => {
  it("has a strict CSP: no scripts, styles only by nonce", () => {
    const html = page({ title: "T", nonce: "abc123", body: "<p>x</p>" });
    assert.match(html, /Content-Security-Policy" content="default-src 'none'; style-src 'nonce-abc123';/);
    assert.match(html, /<style nonce="abc123">/);
    assert.doesNotMatch(html, /<script|unsafe-inline|unsafe-eval|https?:\/\/(?!www\.w3\.org)/);
  });
  it("escapes", () =>
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"));
});

describe("models view", () => {
  it("a row per model with price, key, circuit, p50 and success", () => {
    const rows = asModelRows([
      model,
      {
        ...model,
        id: "local",
        provider: "local",
        input_per_1m: 0,
        output_per_1m: 0,
        available: true,
        unavailable_reason: null,
        p50_ms: null,
        success_rate: null,
        circuit: "open",
      },
    ]);
    assert.ok(rows);
    const html = modelsBody(rows);
    assert.match(html, /<td>mistral<\/td>/);
    assert.match(html, /\$0\.10 \/ \$0\.30/);
    assert.match(html, /free \/ free/);
    assert.match(html, /128,000/);
    assert.match(html, /needs setup/);
    assert.match(html, /850 ms/);
    assert.match(html, /95% of 20/);
    assert.match(html, /class="bad">open/);
    assert.match(html, /MISTRAL_API_KEY is not set/);
  });
  it("escapes what the server sends", () => {
    const rows = asModelRows([{ ...model, id: "<img src=x>" }]);
    assert.ok(rows);
    assert.doesNotMatch(modelsBody(rows), /<img/);
  });
  it("refuses what is not a list of models", () => {
    assert.equal(asModelRows({ id: "x" }), undefined);
    assert.equal(asModelRows([{ id: 1 }]), undefined);
  });
});

describe("usage view", () => {
  it("budgets, a chart, the table and suggestions", () => {
    const report = asUsageReport(usage);
    assert.ok(report);
    const html = usageBody(report);
    assert.match(html, /\$4\.20 of \$5\.00 \(84%\)/);
    assert.match(html, /class="bar warning"/, "84% of the daily budget is a warning bar");
    assert.match(html, /<svg[^>]*aria-label="Spend by model and task this month"/);
    assert.match(html, /gpt-4o · AUTO_FIX/);
    assert.match(html, /3,000 \/ 900/);
    assert.match(html, /1\.2 s/);
    assert.match(html, /cheaper &lt;and&gt; as good/);
    assert.doesNotMatch(html, /style=/, "inline style attributes are blocked by the CSP");
  });
  it("the biggest spender has the longest bar", () => {
    const html = usageBody(asUsageReport(usage)!).split("Spend by model and task")[1] ?? "";
    const widths = [...html.matchAll(/<rect class="bar" x="230" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(widths, [320, 0]);
  });
  it("no calls, no budget", () => {
    const html = usageBody(
      asUsageReport({ ...usage, today: { spent_usd: 0, limit_usd: null }, by_model_task: [], suggestions: [] })!,
    );
    assert.match(html, /No calls this month/);
    assert.match(html, /\$0\.00, no budget/);
  });
  it("over budget is an error bar, capped at the track", () => {
    const svg = budgetChart({ spent_usd: 6, limit_usd: 5 }, { spent_usd: 1, limit_usd: null });
    assert.match(svg, /class="bar error" x="230" y="0" width="400\.0"/);
  });
  it("refuses what is not a report", () => assert.equal(asUsageReport({ today: 1 }), undefined));
});

describe("actions", () => {
  it("prefers fix-all, else the first Fix with ACE quick fix", () => {
    const fixAll = { title: "Fix all with ACE (2 diagnostics)", kind: "source.fixAll.ace" };
    const quick = { title: "Fix with ACE: E501", kind: "quickfix" };
    assert.equal(pickFileFix([quick, fixAll]), fixAll);
    assert.equal(pickFileFix([{ title: "Ruff: fix", kind: "quickfix" }, quick]), quick);
    assert.equal(pickFileFix([{ title: "Review with ACE", kind: "refactor.review.ace" }]), undefined);
  });
  it("the model and price from the action's data, not its title", () => {
    const title = "Fix with ACE · devstral-small · ~$0.0004: `os` imported but unused";
    const data = { kind: "quickfix", uri: "file:///a.py", version: 3 };
    // the server's contract: data.model and data.costUsd, whatever the title says
    assert.equal(
      actionModel({ title, data: { ...data, model: "codestral", costUsd: 0.0012 } }),
      "codestral · ~$0.0012",
    );
    assert.equal(
      actionModel({ title: "Fix with ACE: x", data: { ...data, model: "local", costUsd: 0 } }),
      "local · free",
    );
    assert.equal(actionModel({ title, data: { ...data, model: "gpt-4o", costUsd: null } }), "gpt-4o");
    assert.equal(actionModel({ title, data: { ...data, model: null, costUsd: null } }), "");
    // an older server: no "model" key, so the title is all there is
    assert.equal(actionModel({ title, data }), "devstral-small · ~$0.0004");
    assert.equal(actionModel({ title }), "devstral-small · ~$0.0004");
    assert.equal(actionModel({ title, data: [data] }), "devstral-small · ~$0.0004");
  });
  it("a quote from the wire is checked, never shown as it came", () => {
    assert.deepEqual(dataQuote({ model: "gpt-4o", costUsd: 0.5 }), { model: "gpt-4o", costUsd: 0.5 });
    assert.equal(dataQuote(null), undefined);
    assert.equal(dataQuote("gpt-4o"), undefined);
    assert.equal(dataQuote({ costUsd: 1 }), undefined);
    for (const [model, costUsd] of [
      [{ id: "gpt-4o" }, "0.1"],
      [42, Number.NaN],
      ["", -1],
      ["x".repeat(201), Number.POSITIVE_INFINITY],
    ]) {
      assert.deepEqual(dataQuote({ model, costUsd }), { model: null, costUsd: null });
    }
    assert.equal(quoteText({ model: null, costUsd: 0.1 }), "");
    assert.equal(quoteText({ model: "m", costUsd: 0.00001 }), "m · ~$0.00001");
  });
  it("the model and price in a title", () => {
    assert.equal(
      titleModel("Fix all with ACE (2 diagnostics) · devstral-small · ~$0.0004"),
      "devstral-small · ~$0.0004",
    );
    assert.equal(
      titleModel("Fix with ACE · local · free: Comparison to `None` should be `cond is None`"),
      "local · free",
    );
    assert.equal(titleModel("Fix with ACE: line 5"), "");
    assert.equal(titleModel("Fix all with ACE (3 diagnostics)"), "");
  });
  it("review message", () => {
    const summary = {
      model: "gpt-4o",
      costUsd: 0.0012,
      cached: false,
      findings: [
        { line: 3, endLine: 3, severity: "warning", message: "m", hasPatch: true },
        { line: 5, endLine: 6, severity: "warning", message: "m", hasPatch: false },
        { line: 9, endLine: 9, severity: "error", message: "m", hasPatch: false },
      ],
    };
    assert.ok(isReviewSummary(summary));
    assert.equal(
      reviewMessage(summary),
      "ACE review (gpt-4o, $0.0012): 3 findings (2 warning, 1 error); 1 with a quick fix, shown as diagnostics.",
    );
    assert.equal(
      reviewMessage({ ...summary, cached: true, findings: [] }),
      "ACE review (gpt-4o, cached): no findings.",
    );
  });
});
