/**
 * "ACE: Fix All in File" and "ACE: Review Function": requests to the server shown as a
 * notification whose Cancel button cancels the request (and with it the model call).
 */

import { randomUUID } from "node:crypto";

import * as vscode from "vscode";
import {
  CodeActionRequest,
  CodeActionResolveRequest,
  CodeActionTriggerKind,
  ExecuteCommandRequest,
  ResponseError,
  WorkDoneProgress,
  type CodeAction,
  type Command,
  type LanguageClient,
} from "vscode-languageclient/node";

import {
  actionModel,
  FIX_ALL_KIND,
  isReviewSummary,
  pickFileFix,
  QUICK_FIX_KIND,
  REVIEW_COMMAND,
  reviewMessage,
} from "./pure/actions";
import type { AceServer } from "./server";

type Progress = vscode.Progress<{ message?: string }>;

/** Run `work` under a cancellable notification; a cancelled request ends quietly. */
async function withCancellableProgress(
  title: string,
  work: (progress: Progress, token: vscode.CancellationToken) => Promise<void>,
): Promise<void> {
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, token) => {
      try {
        await work(progress, token);
      } catch (error) {
        if (token.isCancellationRequested) {
          vscode.window.setStatusBarMessage("ACE: cancelled", 3_000);
          return;
        }
        // The server tells the user itself (window/showMessage) why a job failed; say it once.
        if (error instanceof ResponseError) return;
        void vscode.window.showErrorMessage(`ACE: ${errorText(error)}`);
      }
    },
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function activeEditor(): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) void vscode.window.showInformationMessage("ACE: open a file first.");
  return editor;
}

function isCommand(value: CodeAction | Command): value is Command {
  return typeof (value as Command).command === "string";
}

/** ACE's code actions for `diagnostics` of a document, of kind `only`. */
async function codeActions(
  client: LanguageClient,
  document: vscode.TextDocument,
  range: vscode.Range,
  diagnostics: readonly vscode.Diagnostic[],
  only: string,
  token: vscode.CancellationToken,
): Promise<CodeAction[]> {
  const c2p = client.code2ProtocolConverter;
  const answer = await client.sendRequest(
    CodeActionRequest.type,
    {
      textDocument: c2p.asTextDocumentIdentifier(document),
      range: c2p.asRange(range),
      context: {
        diagnostics: await c2p.asDiagnostics([...diagnostics], token),
        only: [only],
        triggerKind: CodeActionTriggerKind.Invoked,
      },
    },
    token,
  );
  return (answer ?? []).filter((a): a is CodeAction => !isCommand(a));
}

export async function fixAllInFile(server: AceServer): Promise<void> {
  const editor = activeEditor();
  if (!editor) return;
  const document = editor.document;
  const diagnostics = vscode.languages.getDiagnostics(document.uri).filter((d) => d.source !== "ace");
  if (diagnostics.length === 0) {
    void vscode.window.showInformationMessage("ACE: this file has no diagnostics to fix.");
    return;
  }
  const n = diagnostics.length;
  await withCancellableProgress(`ACE: fixing ${n} diagnostic${n === 1 ? "" : "s"}`, async (progress, token) => {
    const client = await server.ready();
    const whole = new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length));
    // The server offers source.fixAll.ace for two or more diagnostics, a quick fix for one.
    let actions = await codeActions(client, document, whole, diagnostics, FIX_ALL_KIND, token);
    if (!pickFileFix(actions) && n === 1) {
      actions = await codeActions(client, document, diagnostics[0]!.range, diagnostics, QUICK_FIX_KIND, token);
    }
    const action = pickFileFix(actions);
    if (!action) {
      void vscode.window.showInformationMessage("ACE: nothing to fix in this file.");
      return;
    }
    const model = actionModel(action);
    if (model) progress.report({ message: model });
    const resolved = action.edit ? action : await client.sendRequest(CodeActionResolveRequest.type, action, token);
    if (resolved.edit) {
      const edit = await client.protocol2CodeConverter.asWorkspaceEdit(resolved.edit, token);
      if (!(await vscode.workspace.applyEdit(edit))) {
        void vscode.window.showWarningMessage("ACE: the fix was not applied (the file changed meanwhile?).");
      }
    } else if (resolved.command) {
      await client.sendRequest(
        ExecuteCommandRequest.type,
        { command: resolved.command.command, arguments: resolved.command.arguments },
        token,
      );
    }
  });
}

export async function reviewFunction(server: AceServer): Promise<void> {
  const editor = activeEditor();
  if (!editor) return;
  const { document, selection } = editor;
  await withCancellableProgress("ACE: reviewing", async (progress, token) => {
    const client = await server.ready();
    // The server reports "model (attempt 1 of 2) · 120 tokens" on the token we hand it.
    const workDoneToken = randomUUID();
    const reports = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind !== "end" && value.message) progress.report({ message: value.message });
    });
    try {
      const c2p = client.code2ProtocolConverter;
      const summary: unknown = await client.sendRequest(
        ExecuteCommandRequest.type,
        {
          command: REVIEW_COMMAND,
          arguments: [{ uri: c2p.asUri(document.uri), range: c2p.asRange(selection) }],
          workDoneToken,
        },
        token,
      );
      if (isReviewSummary(summary)) {
        const choice = await vscode.window.showInformationMessage(
          reviewMessage(summary),
          ...(summary.findings.length ? ["Show Problems"] : []),
        );
        if (choice) await vscode.commands.executeCommand("workbench.actions.view.problems");
      }
    } finally {
      reports.dispose();
    }
  });
}
