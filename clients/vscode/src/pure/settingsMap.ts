/**
 * VS Code's `ace.*` settings as the server's flat keys (server/settings.py): the table is
 * package.json's `aceServerSettings`, which the Python tests read too, so the two sides cannot drift.
 *
 * Two layers go to the server: the user's values flat, and the workspace's under `workspace`, which
 * the server lets only tighten (DESIGN.md, "Layers of trust"):
 * `{"tier": "pro", "dailyBudget": 2, "workspace": {"tier": "free", "maskSecrets": true}}`.
 */

import { aceServerSettings, capabilities } from "../../package.json";

/** VS Code setting ("ace.budget.daily") → server key ("dailyBudget"). */
export type SettingsTable = Readonly<Record<string, string>>;

export const SERVER_SETTINGS: SettingsTable = aceServerSettings;

/**
 * Settings whose workspace values VS Code ignores until the workspace is trusted (package.json's
 * `capabilities.untrustedWorkspaces.restrictedConfigurations`): all that can run code or spend.
 */
export const RESTRICTED: ReadonlySet<string> = new Set(capabilities.untrustedWorkspaces.restrictedConfigurations);

/** The key of the workspace layer in the object the server gets. */
export const WORKSPACE = "workspace";

/** The parts of VS Code's `WorkspaceConfiguration.inspect(key)` that ACE reads. */
export interface Inspected {
  readonly defaultValue?: unknown;
  readonly globalValue?: unknown;
  readonly workspaceValue?: unknown;
  readonly workspaceFolderValue?: unknown;
}

/** The user layer's value: user settings (`globalValue`), else the default; never the workspace's. */
export function userValue(inspected: Inspected | undefined): unknown {
  return inspected?.globalValue !== undefined ? inspected.globalValue : inspected?.defaultValue;
}

/** The workspace layer's value: the folder's, else the workspace's; undefined when neither sets it. */
export function workspaceValue(inspected: Inspected | undefined): unknown {
  return inspected?.workspaceFolderValue !== undefined ? inspected.workspaceFolderValue : inspected?.workspaceValue;
}

export interface Trust {
  /** `vscode.workspace.isTrusted`. */
  readonly trusted: boolean;
  /** Settings a workspace may not set while it is untrusted. */
  readonly restricted?: ReadonlySet<string>;
}

/**
 * The object the server gets (initializationOptions, `workspace/configuration` section `ace`,
 * `didChangeConfiguration`): the user layer flat, and `workspace` with the values a workspace or
 * workspace folder sets, always present (`{}` when none, so a later message clears an earlier one).
 * An untrusted workspace's values of restricted settings are left out, as VS Code itself does.
 */
export function layeredSettings(
  inspect: (key: string) => Inspected | undefined,
  trust: Trust,
  table: SettingsTable = SERVER_SETTINGS,
): Record<string, unknown> {
  const restricted = trust.restricted ?? RESTRICTED;
  const user = toServerSettings((key) => userValue(inspect(key)), table);
  const workspace = toServerSettings(
    (key) => (trust.trusted || !restricted.has(key) ? workspaceValue(inspect(key)) : undefined),
    table,
  );
  return { ...user, [WORKSPACE]: workspace };
}

/** The configuration section the server asks for with `workspace/configuration`. */
export const SECTION = "ace";

/**
 * The flat object the server reads, from `read(fullKey)`. Unset (`undefined`) keys are left out;
 * `null` stays, as the server's "no value, use the default".
 */
export function toServerSettings(
  read: (key: string) => unknown,
  table: SettingsTable = SERVER_SETTINGS,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [setting, serverKey] of Object.entries(table)) {
    const value = read(setting);
    if (value !== undefined) out[serverKey] = value;
  }
  return out;
}

/** `key` relative to the section: "ace.budget.daily" → "budget.daily". */
export function inSection(key: string, section: string = SECTION): string {
  return key.startsWith(`${section}.`) ? key.slice(section.length + 1) : key;
}

/**
 * The answer to `workspace/configuration`: the items asking for section `ace` get the flat
 * settings, the others keep what VS Code answered.
 */
export function answerConfiguration(
  items: readonly { readonly section?: string }[],
  answers: readonly unknown[],
  ace: Record<string, unknown>,
): unknown[] {
  return items.map((item, i) => (item.section === SECTION ? ace : (answers[i] ?? null)));
}

/** Whether a change to `key` should be sent to the server (it is one of the mapped settings). */
export function isServerSetting(key: string, table: SettingsTable = SERVER_SETTINGS): boolean {
  return Object.prototype.hasOwnProperty.call(table, key);
}
