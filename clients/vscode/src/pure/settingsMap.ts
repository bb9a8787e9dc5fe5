/**
 * VS Code's `ace.*` settings as the server's flat keys (server/settings.py): the table is
 * package.json's `aceServerSettings`, which the Python tests read too, so the two sides cannot drift.
 */

import { aceServerSettings } from "../../package.json";

/** VS Code setting ("ace.budget.daily") → server key ("dailyBudget"). */
export type SettingsTable = Readonly<Record<string, string>>;

export const SERVER_SETTINGS: SettingsTable = aceServerSettings;

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
  return items.map((item, i) => (item.section === SECTION ? ace : answers[i] ?? null));
}

/** Whether a change to `key` should be sent to the server (it is one of the mapped settings). */
export function isServerSetting(key: string, table: SettingsTable = SERVER_SETTINGS): boolean {
  return Object.prototype.hasOwnProperty.call(table, key);
}
