/**
 * Which process to start for the language server, and with what: setting `ace.server.command` when
 * set, else `ace serve` when `ace` is on PATH, else `<ace.server.python> -I -m ace_lsp.server`.
 *
 * Nothing the workspace holds may decide what runs (issue 12): the executable is found only in
 * absolute PATH folders and started by its absolute path, Python's own code-loading variables are
 * dropped for the built-in launches (`-I` ignores them; the `ace` script's interpreter would not),
 * and server.ts starts it in the extension's own storage folder, never in the workspace.
 */

import * as path from "node:path";

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  /** Where it came from: the user's `ace.server.command`, `ace` on PATH, or the Python fallback. */
  readonly source: "setting" | "ace" | "python";
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
  if (command !== undefined) return { command, args, source: "setting" };
  const ace = which("ace");
  if (ace !== undefined) return { command: ace, args: ["serve"], source: "ace" };
  const python = typeof pythonSetting === "string" && pythonSetting.trim() ? pythonSetting.trim() : "python3";
  // -I: neither the working folder nor PYTHONPATH & co. go on sys.path, so nothing can shadow ACE.
  return { command: python, args: ["-I", "-m", "ace_lsp.server"], source: "python" };
}

export interface PathLookup {
  readonly pathVar: string | undefined;
  readonly delimiter: string;
  /** Windows' PATHEXT; empty elsewhere. */
  readonly extensions: readonly string[];
  readonly isExecutable: (file: string) => boolean;
}

/**
 * The first executable `name` on PATH, like `which`. Relative PATH entries ("", ".", "bin") are
 * skipped: they would be read against whatever folder is current, which may be the workspace.
 */
export function findOnPath(name: string, lookup: PathLookup): string | undefined {
  const dirs = (lookup.pathVar ?? "").split(lookup.delimiter).filter((d) => path.isAbsolute(d));
  const suffixes = lookup.extensions.length > 0 ? lookup.extensions : [""];
  for (const dir of dirs) {
    for (const suffix of suffixes) {
      const file = path.join(dir, name + suffix);
      if (lookup.isExecutable(file)) return file;
    }
  }
  return undefined;
}

/**
 * The absolute file to run for `command`: an absolute path as it is, a bare name from PATH. A
 * relative path ("./ace", ".venv/bin/python") is refused: relative to what folder is not ours to say.
 */
export function findExecutable(command: string, lookup: PathLookup): string | undefined {
  if (path.isAbsolute(command)) return lookup.isExecutable(command) ? command : undefined;
  if (command.includes("/") || command.includes(path.sep)) return undefined;
  return findOnPath(command, lookup);
}

/**
 * Variables that make a Python interpreter load code from elsewhere (PYTHONPATH, PYTHONHOME,
 * PYTHONSTARTUP, PYTHONUSERBASE, PYTHONBREAKPOINT, PYTHONWARNINGS, …): every `PYTHON*` name,
 * which is what `-E` (part of `-I`) ignores.
 */
export function isPythonVariable(name: string): boolean {
  return name.toUpperCase().startsWith("PYTHON");
}

/**
 * The environment the server is started with. The built-in launches lose every `PYTHON*`
 * variable: the Python fallback ignores them anyway (`-I`), and the `ace` script's interpreter,
 * which runs without `-I`, would otherwise put a relative PYTHONPATH entry ahead of ACE. A command
 * the user set in `ace.server.command` gets the environment unchanged: it is theirs to shape.
 */
export function launchEnvironment(launch: Launch, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (launch.source === "setting") return { ...env };
  return Object.fromEntries(Object.entries(env).filter(([name]) => !isPythonVariable(name)));
}

/** How a launch reads in the log: the argv, quoted where needed. Keys are never part of it. */
export function describeLaunch(launch: Pick<Launch, "command" | "args">): string {
  return [launch.command, ...launch.args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ");
}
