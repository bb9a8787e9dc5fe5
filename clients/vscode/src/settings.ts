/**
 * The `ace.*` settings for the server: sent as `initializationOptions`, answered to
 * `workspace/configuration` (section `ace`), and pushed with `workspace/didChangeConfiguration`
 * when they change. Launch settings (`ace.server.*`) restart the server instead.
 */

import * as vscode from "vscode";
import { ResponseError, type ConfigurationMiddleware } from "vscode-languageclient/node";

import { answerConfiguration, inSection, SECTION, SERVER_SETTINGS, toServerSettings } from "./pure/settingsMap";

/** The server's flat settings object, from the current configuration. */
export function serverSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  return toServerSettings((key) => config.get(inSection(key)));
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
  return vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(`${SECTION}.server`)) {
      void target.restart("the server settings changed");
    } else if (keys.some((key) => e.affectsConfiguration(key))) {
      target.sendSettings(serverSettings());
    }
  });
}
