/**
 * The level of each line the server writes to stderr ("2025-01-02 10:00:00,123 WARNING server.x:
 * …", from `ace serve`'s logging format), so the ACE output channel can show it at that level.
 * A line without a level (a traceback's) keeps the level of the line before it.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Readonly<Record<string, LogLevel>> = {
  DEBUG: "debug",
  INFO: "info",
  WARNING: "warn",
  ERROR: "error",
  CRITICAL: "error",
};

const LINE = /^\d{4}-\d\d-\d\d[ T][\d:,.]+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;

export interface LogLine {
  readonly level: LogLevel;
  /** The line without the server's timestamp (the channel adds its own). */
  readonly text: string;
}

export function parseLogLine(line: string, previous: LogLevel = "info"): LogLine {
  const m = LINE.exec(line);
  if (m === null) return { level: previous, text: line };
  return { level: LEVELS[m[1] ?? ""] ?? previous, text: m[2] ?? "" };
}
