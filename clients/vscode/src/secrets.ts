/**
 * API keys in VS Code's SecretStorage: "ACE: Set API Key" stores one, and the server gets them in
 * its environment when it starts. A key is never logged, never put in settings or the output
 * channel, and never shown again.
 */

import * as vscode from "vscode";

import { PROVIDER_KEYS, type ProviderKey } from "./pure/providers";

const PREFIX = "ace.apiKey.";

export class ApiKeys {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  /** Every stored key, by environment variable name. */
  async environment(): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const { env: name } of PROVIDER_KEYS) {
      const value = await this.secrets.get(PREFIX + name);
      if (value) env[name] = value;
    }
    return env;
  }

  /**
   * Ask for a provider and its key, and store it (an empty answer removes the stored key).
   * Resolves to whether anything changed.
   */
  async prompt(): Promise<boolean> {
    const stored = await this.environment();
    type Item = vscode.QuickPickItem & { provider: ProviderKey };
    const items: Item[] = PROVIDER_KEYS.map((provider) => ({
      label: provider.label,
      description: provider.env,
      detail: provider.env in stored ? "A key is stored" : "No key stored",
      provider,
    }));
    const picked = await vscode.window.showQuickPick(items, {
      title: "ACE: Set API Key",
      placeHolder: "Which provider's key?",
    });
    if (!picked) return false;
    const { env: name, label } = picked.provider;
    const value = await vscode.window.showInputBox({
      title: `ACE: ${label} API key (${name})`,
      prompt: `Stored in VS Code's secret storage and given to the ACE server only. Leave empty to remove the stored key.`,
      password: true,
      ignoreFocusOut: true,
      validateInput: (text) => (/\s/.test(text.trim()) ? "An API key has no spaces." : undefined),
    });
    if (value === undefined) return false;
    const key = value.trim();
    if (key) {
      await this.secrets.store(PREFIX + name, key);
      void vscode.window.showInformationMessage(`ACE: the ${label} key is stored; restarting the server with it.`);
    } else if (name in stored) {
      await this.secrets.delete(PREFIX + name);
      void vscode.window.showInformationMessage(`ACE: the ${label} key is removed; restarting the server.`);
    } else {
      return false;
    }
    return true;
  }
}
