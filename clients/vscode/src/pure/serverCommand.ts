/**
 * Which process to start for the language server: setting `ace.server.command` when set, else
 * `ace serve` when `ace` is on PATH, else `<ace.server.python> -I -m ace_lsp.server` (isolated: the workspace cannot shadow it).
 */

import * as path from "node:path";

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
}

/** A command setting as argv: an array of strings, or a string split on spaces (quotes group). */
export function parseCommand(setting: unknown): string[] {
  if (Array.isArray(setting)) {
    return setting.filter((a): a is string => typeof a === "string" && a.length > 0);
  }
  if (typeof setting !== "string") return [];
  const argv: string[] = [];
  // "…" or '…' or a run of non-space characters; quotes are dropped.
  for (const m of setting.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    argv.push(m[1] ?? m[2] ?? m[3] ?? "");
  }
  return argv;
}

export function resolveLaunch(
  commandSetting: unknown,
  pythonSetting: unknown,
  which: (name: string) => string | undefined,
): Launch {
  const [command, ...args] = parseCommand(commandSetting);
  if (command !== undefined) return { command, args };
  const ace = which("ace");
  if (ace !== undefined) return { command: ace, args: ["serve"] };
  const python = typeof pythonSetting === "string" && pythonSetting.trim() ? pythonSetting.trim() : "python3";
  return { command: python, args: ["-I", "-m", "ace_lsp.server"] };
}

export interface PathLookup {
  readonly pathVar: string | undefined;
  readonly delimiter: string;
  /** Windows' PATHEXT; empty elsewhere. */
  readonly extensions: readonly string[];
  readonly isExecutable: (file: string) => boolean;
}

/** The first executable `name` on PATH, like `which`. */
export function findOnPath(name: string, lookup: PathLookup): string | undefined {
  const dirs = (lookup.pathVar ?? "").split(lookup.delimiter).filter((d) => d.length > 0);
  const suffixes = lookup.extensions.length > 0 ? lookup.extensions : [""];
  for (const dir of dirs) {
    for (const suffix of suffixes) {
      const file = path.join(dir, name + suffix);
      if (lookup.isExecutable(file)) return file;
    }
  }
  return undefined;
}

/** How a launch reads in the log: the argv, quoted where needed. Keys are never part of it. */
export function describeLaunch(launch: Launch): string {
  return [launch.command, ...launch.args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ");
}
