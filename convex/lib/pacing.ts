/**
 * The pacing maths, pure: when the next request may start under the
 * provider's windows, and how many jobs may hold a slot at once.
 *
 * A window (length W, limit N) is kept exactly by a log of the latest start
 * times: the next start is no earlier than the N-th latest plus W. The log is
 * appended in order (a start is never earlier than the last one logged), so
 * each window of length W holds at most N entries, and the first N requests of
 * a burst go at once (the ideal schedule: each request as early as both windows
 * allow). `startToleranceMs` is added to each window: the margin for the hop
 * between the clock that logs a start and the provider's.
 *
 * Two logs use this: the dispatcher plans slots with it (so actions are
 * scheduled where a token will be free), and the claim reserves the real start
 * with it (so a start that the scheduler ran late, early or out of order still
 * keeps the windows, waiting inside the action for its token).
 */
import type { QueueConfig } from "./config";

type Windows = Pick<QueueConfig, "secondMs" | "minuteMs" | "maxPerSecond" | "maxPerMinute" | "startToleranceMs">;

/** How many starts a log keeps: enough for the larger window. */
export const logLength = (config: Windows) => Math.max(config.maxPerSecond, config.maxPerMinute);

/** The earliest start at or after `at` that keeps both windows, given the starts logged so far (ascending). */
export function earliestStart(log: readonly number[], at: number, config: Windows): number {
  let start = Math.max(at, log.at(-1) ?? -Infinity);
  for (const [windowMs, limit] of [
    [config.secondMs, config.maxPerSecond],
    [config.minuteMs, config.maxPerMinute],
  ] as const) {
    const limiting = log.length >= limit ? log[log.length - limit] : undefined;
    if (limiting !== undefined) start = Math.max(start, limiting + windowMs + config.startToleranceMs);
  }
  return start;
}

/** Reserves the earliest start at or after `at`: returns it and the log with it appended (trimmed to `logLength`). */
export function reserveStart(log: readonly number[], at: number, config: Windows): { start: number; log: number[] } {
  const start = earliestStart(log, at, config);
  const next = [...log, start];
  return { start, log: next.slice(Math.max(0, next.length - logLength(config))) };
}

/** The mean spacing of starts at the sustained limit (the tighter window's W / N). */
export function sustainedSpacingMs(config: Windows): number {
  return Math.max(config.secondMs / config.maxPerSecond, config.minuteMs / config.maxPerMinute);
}

/**
 * The mean spacing of starts while both windows have room (the looser
 * window's W / N: a backlog's first minute goes at the per-second limit).
 * What Little's law divides a slot's hold time by, so a burst is not held
 * back to the sustained rate; past the minute's budget the extra slots wait
 * for their planned starts, holding no scheduler place.
 */
export function burstSpacingMs(config: Windows): number {
  return Math.min(config.secondMs / config.maxPerSecond, config.minuteMs / config.maxPerMinute);
}

const HEADROOM = 1.5;

/**
 * Jobs allowed to hold a slot now: Little's law (the burst rate x how long a
 * slot is held, with headroom) under the AIMD ceiling `limit`, never above
 * PORTRAIT_MAX_CONCURRENCY and never below one. With no latency known yet the
 * ceiling decides. `heldMs` includes the wait for the loop to hand a freed slot on.
 */
export function allowedInFlight(
  state: { latencyMs?: number; limit: number },
  config: Windows & Pick<QueueConfig, "maxConcurrency">,
  handOnMs: number,
): number {
  const heldMs = (state.latencyMs ?? Infinity) + handOnMs;
  const little = Math.ceil((heldMs / burstSpacingMs(config)) * HEADROOM);
  return Math.max(1, Math.min(config.maxConcurrency, little, Math.floor(state.limit)));
}

/**
 * How long a claimed start may wait inside its action for its token before it
 * gives the slot back and is rescheduled at the token's time instead: two
 * second windows plus the margin, which covers a scheduler's usual jitter.
 */
export const maxStartWaitMs = (config: Windows) => 2 * config.secondMs + config.startToleranceMs;
