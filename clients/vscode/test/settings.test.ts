import assert from "node:assert/strict";
import { describe, it } from "node:test";

import manifest from "../package.json";
import {
  answerConfiguration,
  inSection,
  isServerSetting,
  layeredSettings,
  RESTRICTED,
  SERVER_SETTINGS,
  toServerSettings,
  userValue,
  workspaceValue,
  WORKSPACE,
  type Inspected,
} from "../src/pure/settingsMap";

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
    assert.deepEqual(
      toServerSettings((key) => values[key]),
      { tier: "pro", dailyBudget: 2.5, prefetch: true },
    );
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

describe("settings layers", () => {
  /** What `inspect` would say for each setting: the contributed default plus the layers given. */
  const inspector =
    (layers: Record<string, Omit<Inspected, "defaultValue">>) =>
    (key: string): Inspected => ({ defaultValue: properties[key]?.default, ...layers[key] });
  const defaults = toServerSettings((key) => properties[key]?.default);

  it("the user layer is globalValue, else the default; never the merged or workspace value", () => {
    assert.equal(userValue({ defaultValue: "free", globalValue: "pro", workspaceValue: "ultimate" }), "pro");
    assert.equal(userValue({ defaultValue: "free", workspaceValue: "ultimate" }), "free");
    assert.equal(userValue({ defaultValue: null, globalValue: null }), null);
    assert.equal(userValue(undefined), undefined);
  });

  it("the workspace layer is the folder's value, else the workspace's", () => {
    assert.equal(workspaceValue({ workspaceValue: "free", workspaceFolderValue: "pro" }), "pro");
    assert.equal(workspaceValue({ workspaceValue: "free" }), "free");
    assert.equal(workspaceValue({ globalValue: "pro", defaultValue: "free" }), undefined);
  });

  it("nothing set: the defaults flat, and an empty workspace layer", () => {
    assert.deepEqual(layeredSettings(inspector({}), { trusted: true }), { ...defaults, [WORKSPACE]: {} });
  });

  it("the contract's example", () => {
    const inspect = inspector({
      "ace.tier": { globalValue: "pro", workspaceValue: "free" },
      "ace.budget.daily": { globalValue: 2 },
      "ace.maskSecrets": { workspaceFolderValue: true },
    });
    assert.deepEqual(layeredSettings(inspect, { trusted: true }), {
      ...defaults,
      tier: "pro",
      dailyBudget: 2,
      workspace: { tier: "free", maskSecrets: true },
    });
  });

  it("a workspace value never reaches the user layer, even where the user set nothing", () => {
    const inspect = inspector({ "ace.budget.daily": { workspaceValue: 100 }, "ace.userId": { workspaceValue: "x" } });
    const sent = layeredSettings(inspect, { trusted: true });
    assert.equal(sent.dailyBudget, null);
    assert.equal(sent.userId, "local");
    assert.deepEqual(sent[WORKSPACE], { dailyBudget: 100, userId: "x" });
  });

  it("an untrusted workspace's values of restricted settings are left out", () => {
    const inspect = inspector({
      "ace.tier": { globalValue: "pro", workspaceValue: "ultimate" },
      "ace.riskLevel": { workspaceValue: "aggressive" },
    });
    assert.deepEqual(layeredSettings(inspect, { trusted: false })[WORKSPACE], {});
    assert.deepEqual(layeredSettings(inspect, { trusted: false, restricted: new Set(["ace.tier"]) })[WORKSPACE], {
      riskLevel: "aggressive",
    });
  });

  it("every server setting is restricted in untrusted workspaces, and none is named like the layer key", () => {
    for (const key of Object.keys(SERVER_SETTINGS)) assert.ok(RESTRICTED.has(key), key);
    assert.ok(!Object.values(SERVER_SETTINGS).includes(WORKSPACE));
  });
});

describe("activation and documents", () => {
  it("activates on every language the client serves and on every command", () => {
    const events = new Set(manifest.activationEvents);
    for (const language of manifest.aceLanguages) assert.ok(events.has(`onLanguage:${language}`), language);
    for (const { command } of manifest.contributes.commands) assert.ok(events.has(`onCommand:${command}`), command);
  });
});
