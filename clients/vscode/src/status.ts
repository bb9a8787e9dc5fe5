/**
 * The status bar item "ACE $0.42 / $5.00" fed by the server's `ace/budget` notification, coloured
 * from 80% and 100% of a budget, and the quick pick it opens.
 */

import * as vscode from "vscode";

import { contributes } from "../package.json";
import { asBudget, statusLevel, statusText, tooltipLines, type Budget, type StatusLevel } from "./pure/budget";
import { userValue, workspaceValue } from "./pure/settingsMap";
import type { AceServer, ServerState } from "./server";

export const BUDGET_NOTIFICATION = "ace/budget";

const BACKGROUNDS: Readonly<Record<StatusLevel, vscode.ThemeColor | undefined>> = {
  normal: undefined,
  warning: new vscode.ThemeColor("statusBarItem.warningBackground"),
  error: new vscode.ThemeColor("statusBarItem.errorBackground"),
};

export class BudgetStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private budget: Budget | undefined;

  constructor(server: AceServer) {
    this.item = vscode.window.createStatusBarItem("ace.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "ACE";
    this.item.command = "ace.statusMenu";
    this.showState(server.state, false);
    this.item.show();
    this.disposables.push(
      this.item,
      server.client.onNotification(BUDGET_NOTIFICATION, (payload: unknown) => {
        const budget = asBudget(payload);
        if (budget) this.showBudget(budget);
      }),
      server.onDidChangeState((state) => this.showState(state, true)),
    );
  }

  get tier(): string | undefined {
    return this.budget?.tier;
  }

  showBudget(budget: Budget): void {
    this.budget = budget;
    const level = statusLevel(budget);
    this.item.text = statusText(budget);
    this.item.backgroundColor = BACKGROUNDS[level];
    const tooltip = new vscode.MarkdownString(tooltipLines(budget).join("  \n"));
    tooltip.appendMarkdown("\n\n_Click for tier, usage, models and keys._");
    this.item.tooltip = tooltip;
  }

  /** Show the server's state; `tell`: also say in a notification when it stopped for good. */
  private showState(state: ServerState, tell: boolean): void {
    switch (state.kind) {
      case "running":
        if (this.budget) this.showBudget(this.budget);
        else this.set("ACE", "ACE: waiting for the server's budget", undefined);
        return;
      case "starting":
        this.set("$(sync~spin) ACE", "ACE: starting the server", undefined);
        return;
      case "restarting":
        this.set(
          "$(warning) ACE",
          `ACE: the server stopped; restarting in ${Math.round(state.inMs / 1000)} s`,
          BACKGROUNDS.warning,
        );
        return;
      case "stopped":
        this.set("$(error) ACE", `ACE: the server is not running (${state.reason})`, BACKGROUNDS.error);
        if (!tell) return;
        void vscode.window
          .showWarningMessage(`ACE: the server is not running: ${state.reason}.`, "Show Output", "Restart Server")
          .then((choice) => {
            if (choice === "Show Output") void vscode.commands.executeCommand("ace.showOutput");
            if (choice === "Restart Server") void vscode.commands.executeCommand("ace.restartServer");
          });
        return;
    }
  }

  private set(text: string, tooltip: string, background: vscode.ThemeColor | undefined): void {
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = background;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** What clicking the status bar item offers. */
export async function showStatusMenu(status: BudgetStatus): Promise<void> {
  type Item = vscode.QuickPickItem & { command: string };
  const tier = status.tier ?? vscode.workspace.getConfiguration("ace").get<string>("tier");
  const items: Item[] = [
    { label: "$(arrow-swap) Change tier", description: tier ? `now ${tier}` : undefined, command: "ace.changeTier" },
    { label: "$(graph) Show usage", command: "ace.showUsage" },
    { label: "$(list-flat) Show models", command: "ace.showModels" },
    { label: "$(key) Set API key", command: "ace.setApiKey" },
    { label: "$(debug-restart) Restart server", command: "ace.restartServer" },
    { label: "$(output) Show output", command: "ace.showOutput" },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: "ACE" });
  if (picked) await vscode.commands.executeCommand(picked.command);
}

/**
 * Pick a tier and write `ace.tier` to the user's settings: a workspace's `ace.tier` can only lower
 * the user's (the server lets workspace settings only tighten), so writing it there could not raise it.
 */
export async function changeTier(): Promise<void> {
  const setting = contributes.configuration.properties["ace.tier"];
  const config = vscode.workspace.getConfiguration("ace", vscode.workspace.workspaceFolders?.[0]?.uri);
  const inspected = config.inspect("tier");
  const current = userValue(inspected);
  const items = setting.enum.map((tier, i) => ({
    label: tier,
    description: tier === current ? "current" : undefined,
    detail: setting.enumDescriptions[i],
  }));
  const picked = await vscode.window.showQuickPick(items, { title: "ACE: Change Tier" });
  if (!picked || picked.label === current) return;
  await config.update("tier", picked.label, vscode.ConfigurationTarget.Global);
  const workspaceTier = workspaceValue(inspected);
  if (typeof workspaceTier === "string" && workspaceTier !== picked.label) {
    void vscode.window.showInformationMessage(
      `ACE: tier ${picked.label} is in your user settings; this workspace sets "ace.tier" to ` +
        `${workspaceTier}, and a workspace's setting can only lower your tier, never raise it.`,
    );
  }
}
