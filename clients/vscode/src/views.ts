/**
 * "ACE: Show Models" and "ACE: Show Usage": webview pages built from the server's `ace.models` and
 * `ace.usage` commands (never from the ledger file). No scripts; see pure/html.ts for the CSP.
 */

import { randomBytes } from "node:crypto";

import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";

import { errorBody, page } from "./pure/html";
import { asModelRows, modelsBody } from "./pure/modelsView";
import { asUsageReport, usageBody } from "./pure/usageView";
import type { AceServer } from "./server";

interface View {
  readonly id: string;
  readonly title: string;
  /** The server command that answers the data. */
  readonly serverCommand: string;
  /** The VS Code command that opens (and refreshes) the view. */
  readonly command: string;
  /** The page body from the answer, or undefined when the answer is not what the view shows. */
  readonly render: (answer: unknown) => string | undefined;
}

export const MODELS: View = {
  id: "ace.models",
  title: "ACE Models",
  serverCommand: "ace.models",
  command: "ace.showModels",
  render: (answer) => {
    const rows = asModelRows(answer);
    return rows && modelsBody(rows);
  },
};

export const USAGE: View = {
  id: "ace.usage",
  title: "ACE Usage",
  serverCommand: "ace.usage",
  command: "ace.showUsage",
  render: (answer) => {
    const report = asUsageReport(answer);
    return report && usageBody(report);
  },
};

export class Views implements vscode.Disposable {
  private readonly panels = new Map<string, vscode.WebviewPanel>();

  constructor(private readonly server: AceServer) {}

  /** Open (or bring forward and refresh) a view. */
  async show(view: View): Promise<void> {
    const panel = this.panel(view);
    panel.reveal(undefined, true);
    const render = (body: string): void => {
      panel.webview.html = page({ title: view.title, nonce: randomBytes(16).toString("base64"), body });
    };
    if (!panel.webview.html) render(`<p class="muted">Asking the ACE server…</p>`);
    try {
      const client = await this.server.ready();
      const answer: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: view.serverCommand,
        arguments: [],
      });
      const body = view.render(answer);
      render(
        body ??
          errorBody(
            view.title,
            `The server's answer to ${view.serverCommand} was not understood; is the server older than this extension?`,
            view.command,
          ),
      );
    } catch (error) {
      render(errorBody(view.title, error instanceof Error ? error.message : String(error), view.command));
    }
  }

  private panel(view: View): vscode.WebviewPanel {
    const existing = this.panels.get(view.id);
    if (existing) return existing;
    const panel = vscode.window.createWebviewPanel(view.id, view.title, vscode.ViewColumn.Active, {
      enableScripts: false,
      enableCommandUris: [view.command, "ace.setApiKey", "ace.showOutput", "ace.showModels", "ace.showUsage"],
      localResourceRoots: [],
    });
    panel.onDidDispose(() => this.panels.delete(view.id));
    this.panels.set(view.id, panel);
    return panel;
  }

  dispose(): void {
    for (const panel of this.panels.values()) panel.dispose();
    this.panels.clear();
  }
}
