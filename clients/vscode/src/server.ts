/**
 * The ACE language server process and its client: `ace serve` over stdio (see
 * pure/serverCommand.ts for which command), restarted with backoff when it stops on its own, its
 * stderr in the "ACE" output channel. API keys reach it only through its environment. It runs in
 * the extension's own storage folder, never in the workspace (issue 12: Workspace Trust).
 */

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  LanguageClient,
  State,
  type CloseHandlerResult,
  type DocumentSelector,
  type LanguageClientOptions,
} from "vscode-languageclient/node";

import { aceLanguages } from "../package.json";
import { Backoff } from "./pure/backoff";
import { serverEnvironment } from "./pure/providers";
import { describeLaunch, findExecutable, launchEnvironment, resolveLaunch, type Launch } from "./pure/serverCommand";
import { parseLogLine, type LogLevel } from "./pure/serverLog";
import { configurationMiddleware, launchSetting, serverSettings, type SettingsTarget } from "./settings";

/** Start failures in a row (the server never answered `initialize`) before waiting for the user. */
const MAX_START_FAILURES = 3;

export type ServerState =
  | { readonly kind: "starting" }
  | { readonly kind: "running" }
  | { readonly kind: "restarting"; readonly inMs: number }
  | { readonly kind: "stopped"; readonly reason: string };

export const documentSelector: DocumentSelector = aceLanguages.flatMap((language) => [
  { scheme: "file", language },
  { scheme: "untitled", language },
]);

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The absolute file `name` runs, from absolute PATH folders only; undefined when there is none. */
function which(name: string): string | undefined {
  return findExecutable(name, {
    pathVar: process.env.PATH,
    delimiter: path.delimiter,
    extensions: process.platform === "win32" ? (process.env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [],
    isExecutable,
  });
}

/** The launch from the user's own settings: `ace.server.*` are machine-scoped, a workspace cannot set them. */
function currentLaunch(): Launch {
  return resolveLaunch(launchSetting("server.command"), launchSetting("server.python"), which);
}

/**
 * The server's working folder: the extension's global storage folder, which belongs to this user
 * and this extension (not the workspace, whose `server/` or `ace_lsp/` a non-isolated
 * `python -m …` in `ace.server.command` would import, and not the shared temp folder, where
 * another local user could put them). The home folder if it cannot be made.
 */
function workingDirectory(storage: vscode.Uri): string {
  if (storage.scheme === "file") {
    try {
      fs.mkdirSync(storage.fsPath, { recursive: true, mode: 0o700 });
      return storage.fsPath;
    } catch {
      // read-only or odd profile folder: the home folder is still the user's own
    }
  }
  return os.homedir();
}

export class AceServer implements SettingsTarget, vscode.Disposable {
  readonly client: LanguageClient;
  private readonly backoff = new Backoff();
  private readonly states = new vscode.EventEmitter<ServerState>();
  readonly onDidChangeState = this.states.event;
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private startFailures = 0;
  private disposed = false;
  private lastState: ServerState = { kind: "starting" }; // activation starts it right away

  constructor(
    private readonly channel: vscode.LogOutputChannel,
    private readonly apiKeys: () => Promise<Record<string, string>>,
    /** The extension's global storage folder (`ExtensionContext.globalStorageUri`): the working folder. */
    private readonly storage: vscode.Uri,
  ) {
    const options: LanguageClientOptions = {
      documentSelector,
      outputChannel: channel,
      initializationOptions: () => serverSettings(),
      middleware: { workspace: configurationMiddleware },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.closed(),
      },
      // The server's log (stderr) at its own levels; stdout is the protocol for a child process.
      stdioOptions: { stdout: pipeLog, stderr: pipeLog },
    };
    // id "ace": the client reads `ace.trace.server` itself and follows its changes.
    this.client = new LanguageClient("ace", "ACE", () => this.spawn(), options);
  }

  get state(): ServerState {
    return this.lastState;
  }

  /** Start the server (once; later calls wait for the same start). */
  start(): Promise<void> {
    this.starting ??= this.run().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** Stop and start again now, forgetting earlier failures: the user asked, or keys or launch changed. */
  async restart(reason: string): Promise<void> {
    if (this.disposed) return;
    this.channel.info(`Restarting the ACE server: ${reason}.`);
    this.clearTimer();
    this.backoff.reset();
    this.startFailures = 0;
    await this.starting?.catch(() => undefined);
    if (this.client.state === State.Running) {
      try {
        await this.client.stop();
      } catch (error) {
        this.channel.warn(`Stopping the ACE server failed: ${String(error)}`);
      }
    }
    await this.start();
  }

  /** The running client; waits while it starts, fails when it is not running. */
  async ready(): Promise<LanguageClient> {
    if (this.starting) await this.starting;
    if (!this.client.isRunning()) {
      const why = this.lastState.kind === "restarting" ? "is restarting" : "is not running";
      throw new Error(`The ACE server ${why}; see the ACE output, or run "ACE: Restart Server".`);
    }
    return this.client;
  }

  sendSettings(settings: Record<string, unknown>): void {
    if (!this.client.isRunning()) return; // the next start sends them as initializationOptions
    void this.client
      .sendNotification(DidChangeConfigurationNotification.type, { settings: { ace: settings } })
      .catch((error: unknown) => this.channel.warn(`Sending settings failed: ${String(error)}`));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.clearTimer();
    this.states.dispose();
    try {
      await this.client.dispose();
    } catch {
      // the server may already be gone; nothing is left to clean up
    }
  }

  private setState(state: ServerState): void {
    this.lastState = state;
    if (!this.disposed) this.states.fire(state);
  }

  private async run(): Promise<void> {
    if (this.disposed) return;
    const launch = currentLaunch();
    if (which(launch.command) === undefined) {
      // Retrying cannot help until the user installs ACE or changes the settings.
      const reason = `${launch.command} was not found`;
      this.channel.error(
        `Cannot start the ACE server: ${reason}. Install ACE (pip install ace-lsp), or set ` +
          `"ace.server.command" or "ace.server.python" (an absolute path, or a name on PATH) in your ` +
          `user settings, then run "ACE: Restart Server".`,
      );
      this.setState({ kind: "stopped", reason });
      return;
    }
    this.setState({ kind: "starting" });
    try {
      await this.client.start();
    } catch (error) {
      this.startFailures += 1;
      if (this.startFailures >= MAX_START_FAILURES) {
        const reason = `it failed to start ${this.startFailures} times in a row`;
        this.channel.error(
          `Not restarting the ACE server: ${reason}. Fix the cause above, then run "ACE: Restart Server".`,
        );
        this.setState({ kind: "stopped", reason });
      } else {
        const delay = this.scheduleRestart();
        this.channel.error(`The ACE server did not start (${String(error)}); trying again in ${seconds(delay)}.`);
      }
      return;
    }
    this.startFailures = 0;
    this.backoff.started(Date.now());
    this.setState({ kind: "running" });
  }

  /** The connection closed without our asking: a crash, or the server exited. */
  private closed(): CloseHandlerResult {
    if (this.disposed) return { action: CloseAction.DoNotRestart, handled: true };
    if (this.lastState.kind !== "running") {
      // It never finished starting: start() fails (or has failed) and run() decides what to do.
      return { action: CloseAction.DoNotRestart, handled: true, message: "The ACE server exited while starting." };
    }
    const delay = this.scheduleRestart();
    return {
      action: CloseAction.DoNotRestart,
      handled: true,
      message: `The ACE server stopped unexpectedly; restarting it in ${seconds(delay)} (attempt ${this.backoff.attempts}).`,
    };
  }

  private scheduleRestart(): number {
    const delay = this.backoff.stopped(Date.now());
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.start();
    }, delay);
    this.setState({ kind: "restarting", inMs: delay });
    return delay;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async spawn(): Promise<ChildProcess> {
    const launch = currentLaunch();
    // By its absolute path: the OS's own PATH search could read a relative entry against `cwd`.
    const command = which(launch.command);
    if (command === undefined) throw new Error(`${launch.command} was not found`);
    const cwd = workingDirectory(this.storage);
    // Only the argv is logged; the environment carries the keys and is never written anywhere.
    this.channel.info(`Starting the ACE server: ${describeLaunch({ ...launch, command })} (in ${cwd})`);
    const env = launchEnvironment(launch, serverEnvironment(process.env, await this.apiKeys()));
    const child = spawn(command, [...launch.args], { cwd, env, stdio: "pipe", windowsHide: true });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) =>
        reject(
          new Error(
            `could not run ${describeLaunch(launch)}: ${error.message}. Install ACE (pip install ace-lsp) ` +
              `or set "ace.server.command" or "ace.server.python".`,
          ),
        ),
      );
    });
    child.once("exit", (code, signal) => {
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      this.channel.info(`The ACE server process ended (${how}).`);
    });
    return child;
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

/** The server's stderr, line by line, at the level each line names. */
function pipeLog(input: NodeJS.ReadableStream, out: vscode.LogOutputChannel): void {
  let level: LogLevel = "info";
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on("line", (raw: string) => {
    const line = parseLogLine(raw, level);
    level = line.level;
    out[line.level](line.text);
  });
}
