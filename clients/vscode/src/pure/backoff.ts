/**
 * When to start the server again after it stopped: 1 s, 2 s, 4 s … capped at 30 s, and back to
 * 1 s once a run has stayed up for 60 s. Pure: the caller passes the clock.
 */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /** A run at least this long counts as healthy and resets the delays. */
  readonly healthyMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, healthyMs: 60_000 };

/** The delay before restart number `attempt` (0-based) in a row of failures. */
export function delayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exponent = Math.max(0, Math.floor(attempt));
  // 2 ** 1024 is Infinity, which Math.min caps too; no overflow to guard against.
  return Math.min(policy.initialMs * 2 ** exponent, policy.maxMs);
}

export class Backoff {
  private failures = 0;
  private startedAt: number | undefined;

  constructor(private readonly policy: BackoffPolicy = DEFAULT_BACKOFF) {}

  /** The server answered `initialize` at `now`. */
  started(now: number): void {
    this.startedAt = now;
  }

  /** The server stopped (or failed to start) at `now`: how long to wait before starting it again. */
  stopped(now: number): number {
    if (this.startedAt !== undefined && now - this.startedAt >= this.policy.healthyMs) {
      this.failures = 0;
    }
    this.startedAt = undefined;
    const delay = delayMs(this.failures, this.policy);
    this.failures += 1;
    return delay;
  }

  /** Failures in a row so far (0 after a healthy run or a reset). */
  get attempts(): number {
    return this.failures;
  }

  /** Forget the failures: the user restarted the server by hand. */
  reset(): void {
    this.failures = 0;
    this.startedAt = undefined;
  }
}
