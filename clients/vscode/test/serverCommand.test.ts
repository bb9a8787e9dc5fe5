import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  describeLaunch,
  findExecutable,
  findOnPath,
  launchEnvironment,
  parseCommand,
  resolveLaunch,
  type Launch,
} from "../src/pure/serverCommand";
import { serverEnvironment } from "../src/pure/providers";
import { parseLogLine } from "../src/pure/serverLog";

describe("parseCommand", () => {
  const table: [unknown, string[]][] = [
    [
      ["ace", "serve"],
      ["ace", "serve"],
    ],
    [
      ["ace", "", 3, "serve"],
      ["ace", "serve"],
    ],
    ["ace serve", ["ace", "serve"]],
    [
      "  \"/opt/my tools/ace\"   serve --log-file '/tmp/a b.log' ",
      ["/opt/my tools/ace", "serve", "--log-file", "/tmp/a b.log"],
    ],
    ["", []],
    [[], []],
    [null, []],
    [undefined, []],
    [42, []],
  ];
  for (const [setting, argv] of table) {
    it(JSON.stringify(setting) ?? "undefined", () => assert.deepEqual(parseCommand(setting), argv));
  }
});

describe("resolveLaunch", () => {
  const onPath = (found: Record<string, string>) => (name: string) => found[name];
  it("the setting wins", () => {
    assert.deepEqual(resolveLaunch(["/venv/bin/ace", "serve", "-v"], "python3", onPath({ ace: "/usr/bin/ace" })), {
      command: "/venv/bin/ace",
      args: ["serve", "-v"],
      source: "setting",
    });
  });
  it("ace on PATH", () => {
    assert.deepEqual(resolveLaunch([], "python3", onPath({ ace: "/usr/local/bin/ace" })), {
      command: "/usr/local/bin/ace",
      args: ["serve"],
      source: "ace",
    });
  });
  it("else python -I -m ace_lsp.server with the python setting", () => {
    assert.deepEqual(resolveLaunch("", "/venv/bin/python", onPath({})), {
      command: "/venv/bin/python",
      args: ["-I", "-m", "ace_lsp.server"],
      source: "python",
    });
  });
  it("python3 when the python setting is empty", () => {
    assert.deepEqual(resolveLaunch(undefined, "  ", onPath({})), {
      command: "python3",
      args: ["-I", "-m", "ace_lsp.server"],
      source: "python",
    });
  });
});

describe("findOnPath", () => {
  const files = new Set(["/b/ace", "/c/ace", "/w/ace.EXE"]);
  const isExecutable = (f: string) => files.has(f);
  it("the first directory that has it", () => {
    assert.equal(findOnPath("ace", { pathVar: "/a::/b:/c", delimiter: ":", extensions: [], isExecutable }), "/b/ace");
  });
  it("nothing on an empty PATH", () => {
    assert.equal(findOnPath("ace", { pathVar: undefined, delimiter: ":", extensions: [], isExecutable }), undefined);
  });
  it("skips relative entries: they would be read against the current folder", () => {
    const here = new Set(["ace", "bin/ace", "/c/ace"]);
    const lookup = { pathVar: ":.:bin:/c", delimiter: ":", extensions: [], isExecutable: (f: string) => here.has(f) };
    assert.equal(findOnPath("ace", lookup), "/c/ace");
    assert.equal(findOnPath("ace", { ...lookup, pathVar: ".:bin" }), undefined);
  });
  it("tries PATHEXT suffixes", () => {
    assert.equal(
      findOnPath("ace", { pathVar: "/w", delimiter: ":", extensions: [".CMD", ".EXE"], isExecutable }),
      "/w/ace.EXE",
    );
  });
});

describe("findExecutable", () => {
  const files = new Set(["/opt/ace/bin/ace", "/usr/bin/python3", "venv/bin/python", "./ace"]);
  const lookup = { pathVar: "/usr/bin", delimiter: ":", extensions: [], isExecutable: (f: string) => files.has(f) };
  const table: [string, string | undefined][] = [
    ["/opt/ace/bin/ace", "/opt/ace/bin/ace"],
    ["/opt/ace/bin/missing", undefined],
    ["python3", "/usr/bin/python3"],
    ["venv/bin/python", undefined],
    ["./ace", undefined],
    ["ace", undefined],
  ];
  for (const [command, found] of table) {
    it(`${command} → ${String(found)}`, () => assert.equal(findExecutable(command, lookup), found));
  }
});

describe("launchEnvironment", () => {
  const env = {
    PATH: "/bin",
    PYTHONPATH: ".",
    PYTHONHOME: "/x",
    PYTHONSTARTUP: "s.py",
    pythonbreakpoint: "m.f",
    OPENAI_API_KEY: "k",
  };
  const launch = (source: Launch["source"]): Launch => ({ command: "/bin/ace", args: ["serve"], source });
  for (const source of ["ace", "python"] as const) {
    it(`drops every PYTHON* variable for the built-in launch (${source})`, () => {
      assert.deepEqual(launchEnvironment(launch(source), env), { PATH: "/bin", OPENAI_API_KEY: "k" });
    });
  }
  it("keeps the environment for the user's own command", () => {
    assert.deepEqual(launchEnvironment(launch("setting"), env), env);
  });
});

describe("describeLaunch and the environment", () => {
  it("quotes arguments with spaces", () => {
    assert.equal(describeLaunch({ command: "/opt/my ace", args: ["serve"] }), '"/opt/my ace" serve');
  });
  it("stored keys go over the inherited environment, which is not changed", () => {
    const base = { PATH: "/bin", OPENAI_API_KEY: "old" };
    const env = serverEnvironment(base, { OPENAI_API_KEY: "new", MISTRAL_API_KEY: "m" });
    assert.deepEqual(env, { PATH: "/bin", OPENAI_API_KEY: "new", MISTRAL_API_KEY: "m" });
    assert.equal(base.OPENAI_API_KEY, "old");
  });
});

describe("parseLogLine", () => {
  it("reads the level of the server's log format", () => {
    assert.deepEqual(parseLogLine("2025-03-01 10:00:00,123 WARNING server.configuration: bad tier"), {
      level: "warn",
      text: "server.configuration: bad tier",
    });
    assert.equal(parseLogLine("2025-03-01 10:00:00,123 DEBUG x: y").level, "debug");
    assert.equal(parseLogLine("2025-03-01 10:00:00,123 CRITICAL x: y").level, "error");
  });
  it("a line without a level keeps the previous one", () => {
    assert.deepEqual(parseLogLine('  File "x.py", line 3', "error"), { level: "error", text: '  File "x.py", line 3' });
    assert.equal(parseLogLine("Traceback (most recent call last):").level, "info");
  });
});
