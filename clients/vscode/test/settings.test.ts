import assert from "node:assert/strict";
import { describe, it } from "node:test";

import manifest from "../package.json";
import { answerConfiguration, inSection, isServerSetting, SERVER_SETTINGS, toServerSettings } from "../src/pure/settingsMap";

type Properties = Record<string, { default?: unknown }>;
const properties = manifest.contributes.configuration.properties as Properties;

describe("settings mapping", () => {
  it("is the table in package.json", () => {
    assert.deepEqual(SERVER_SETTINGS, {
      "ace.tier": "tier",
      "ace.userId": "userId",
      "ace.riskLevel": "riskLevel",
      "ace.budget.daily": "dailyBudget",
      "ace.budget.monthly": "monthlyBudget",
      "ace.hoverReview": "hoverReview",
      "ace.prefetch": "prefetch",
      "ace.maskSecrets": "maskSecrets",
    });
  });

  it("maps every contributed default", () => {
    const flat = toServerSettings((key) => properties[key]?.default);
    assert.deepEqual(flat, {
      tier: "free",
      userId: "local",
      riskLevel: "balanced",
      dailyBudget: null,
      monthlyBudget: null,
      hoverReview: "cached",
      prefetch: false,
      maskSecrets: true,
    });
  });

  it("every mapped setting is contributed, and every contributed ace.* is mapped or client-only", () => {
    const clientOnly = new Set(["ace.server.command", "ace.server.python", "ace.trace.server"]);
    for (const key of Object.keys(SERVER_SETTINGS)) assert.ok(key in properties, key);
    for (const key of Object.keys(properties)) assert.ok(isServerSetting(key) || clientOnly.has(key), key);
  });

  it("maps user values and leaves unset keys out", () => {
    const values: Record<string, unknown> = { "ace.tier": "pro", "ace.budget.daily": 2.5, "ace.prefetch": true };
    assert.deepEqual(toServerSettings((key) => values[key]), { tier: "pro", dailyBudget: 2.5, prefetch: true });
  });

  it("inSection strips the section prefix", () => {
    assert.equal(inSection("ace.budget.daily"), "budget.daily");
    assert.equal(inSection("ace.tier"), "tier");
    assert.equal(inSection("editor.tabSize"), "editor.tabSize");
  });

  it("answers section ace with the flat settings, others as VS Code did", () => {
    const flat = { tier: "pro" };
    const answers = answerConfiguration(
      [{ section: "ace" }, { section: "python" }, {}],
      [{ budget: { daily: 1 } }, { x: 1 }],
      flat,
    );
    assert.deepEqual(answers, [flat, { x: 1 }, null]);
  });
});

describe("activation and documents", () => {
  it("activates on every language the client serves and on every command", () => {
    const events = new Set(manifest.activationEvents);
    for (const language of manifest.aceLanguages) assert.ok(events.has(`onLanguage:${language}`), language);
    for (const { command } of manifest.contributes.commands) assert.ok(events.has(`onCommand:${command}`), command);
  });
});
