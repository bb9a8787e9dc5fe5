/**
 * The `ace.*` settings for the server: sent as `initializationOptions`, answered to
 * `workspace/configuration` (section `ace`), and pushed with `workspace/didChangeConfiguration`
 * when they change or the workspace becomes trusted. The user's values go flat, the workspace's
 * under `workspace` (pure/settingsMap.ts), which the server lets only tighten. Launch settings
 * (`ace.server.*`) restart the server instead.
 */

import * as vscode from "vscode";
import { ResponseError, type ConfigurationMiddleware } from "vscode-languageclient/node";

import {
  answerConfiguration,
  inSection,
  layeredSettings,
  SECTION,
  SERVER_SETTINGS,
  userValue,
} from "./pure/settingsMap";

/** The server's settings object, user and workspace layers, from the current configuration. */
export function serverSettings(): Record<string, unknown> {
  // The first folder's values, as the server's root is the first folder.
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const config = vscode.workspace.getConfiguration(SECTION, folder);
  return layeredSettings((key) => config.inspect(inSection(key)), { trusted: vscode.workspace.isTrusted });
}

/** A launch setting (`server.command`, `server.python`) from the user's settings only, never the workspace's. */
export function launchSetting(key: string): unknown {
  return userValue(vscode.workspace.getConfiguration(SECTION).inspect(key));
}

/** Answers section `ace` with the mapped settings; other sections as VS Code has them. */
export const configurationMiddleware: ConfigurationMiddleware = {
  configuration: async (params, token, next) => {
    const answers = await next(params, token);
    if (answers instanceof ResponseError) return answers;
    return answerConfiguration(params.items, answers, serverSettings());
  },
};

export interface SettingsTarget {
  /** Push new settings to the running server. */
  sendSettings(settings: Record<string, unknown>): void;
  /** The launch changed (`ace.server.*`): start the server again. */
  restart(reason: string): Promise<void>;
}

export function watchSettings(target: SettingsTarget): vscode.Disposable {
  const keys = Object.keys(SERVER_SETTINGS);
  return vscode.Disposable.from(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${SECTION}.server`)) {
        void target.restart("the server settings changed");
      } else if (keys.some((key) => e.affectsConfiguration(key))) {
        target.sendSettings(serverSettings());
      }
    }),
    // Trusted now: the workspace's values of restricted settings count (still only to tighten).
    vscode.workspace.onDidGrantWorkspaceTrust(() => target.sendSettings(serverSettings())),
  );
}
