/**
 * The retry delay shared by portrait jobs and story runs: exponential from
 * `initialMs` (attempt 1 waits `initialMs`), capped at `maxMs`, optionally with
 * the workpool's jitter (a uniform 50-100% of the delay, so a burst of
 * failures does not retry in lockstep), and never sooner than the provider's
 * Retry-After.
 */
export type Backoff = { initialMs: number; maxMs: number; jitter: boolean };

export function backoffMs(attempt: number, policy: Backoff, retryAfterMs = 0): number {
  const exponential = Math.min(policy.maxMs, policy.initialMs * 2 ** (Math.max(1, attempt) - 1));
  const delay = policy.jitter ? Math.round(exponential * (0.5 + Math.random() / 2)) : exponential;
  return Math.max(delay, retryAfterMs);
}
