/** ACE for VS Code: wires the server, settings, keys, status bar, commands and views together. */

import * as vscode from "vscode";

import { fixAllInFile, reviewFunction } from "./commands";
import { ApiKeys } from "./secrets";
import { AceServer } from "./server";
import { watchSettings } from "./settings";
import { BudgetStatus, changeTier, showStatusMenu } from "./status";
import { MODELS, USAGE, Views } from "./views";

let server: AceServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const channel = vscode.window.createOutputChannel("ACE", { log: true });
  const keys = new ApiKeys(context.secrets);
  server = new AceServer(channel, () => keys.environment(), context.globalStorageUri);
  const ace = server;
  const status = new BudgetStatus(ace);
  const views = new Views(ace);

  const commands: Record<string, () => unknown> = {
    "ace.fixAllInFile": () => fixAllInFile(ace),
    "ace.reviewFunction": () => reviewFunction(ace),
    "ace.showModels": () => views.show(MODELS),
    "ace.showUsage": () => views.show(USAGE),
    "ace.changeTier": () => changeTier(),
    "ace.setApiKey": async () => {
      if (await keys.prompt()) await ace.restart("the API keys changed");
    },
    "ace.restartServer": () => ace.restart("asked from the command palette"),
    "ace.showOutput": () => channel.show(true),
    "ace.statusMenu": () => showStatusMenu(status),
  };
  context.subscriptions.push(
    channel,
    status,
    views,
    watchSettings(ace),
    ...Object.entries(commands).map(([id, run]) => vscode.commands.registerCommand(id, run)),
  );
  void ace.start();
}

export async function deactivate(): Promise<void> {
  await server?.dispose();
  server = undefined;
}
