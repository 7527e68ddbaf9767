/**
 * The pacing maths on its own (convex/lib/pacing.ts): no backend, no timers.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  allowedInFlight,
  burstSpacingMs,
  earliestStart,
  logLength,
  maxStartWaitMs,
  reserveStart,
  sustainedSpacingMs,
} from "../convex/lib/pacing";

const recraft = { secondMs: 1_000, minuteMs: 60_000, maxPerSecond: 5, maxPerMinute: 100, startToleranceMs: 0 };

/** Reserves `n` starts for requests all ready at `at`, as the loop and the claims do. */
function schedule(n: number, config: typeof recraft, at = 0): number[] {
  let log: number[] = [];
  const starts: number[] = [];
  for (let i = 0; i < n; i++) {
    const reserved = reserveStart(log, at, config);
    log = reserved.log;
    starts.push(reserved.start);
  }
  return starts;
}

/** The most starts in any window (t - windowMs, t], as the provider counts them. */
function maxInWindow(starts: number[], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let first = 0;
  let most = 0;
  sorted.forEach((at, i) => {
    while (sorted[first]! <= at - windowMs) first++;
    most = Math.max(most, i - first + 1);
  });
  return most;
}

describe("the start log", () => {
  test("a backlog follows the ideal schedule: each second's five at once, the minute's hundred, then the next minute", () => {
    const starts = schedule(150, recraft);
    expect(starts.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(starts.slice(5, 10)).toEqual([1_000, 1_000, 1_000, 1_000, 1_000]);
    expect(starts[99]).toBe(19_000);
    expect(starts[100]).toBe(60_000); // the minute's budget is spent: the 101st waits for the first to leave it
    expect(starts[149]).toBe(69_000);
    expect(maxInWindow(starts, 1_000)).toBe(5);
    expect(maxInWindow(starts, 60_000)).toBe(100);
  });

  test("where the second binds, 14 requests at 4 a second start within 3 seconds (not (1 s + T) / N apart)", () => {
    const starts = schedule(14, { ...recraft, maxPerSecond: 4, maxPerMinute: 10_000 });
    expect(starts[13]).toBe(3_000);
  });

  test("the margin is added to each window", () => {
    const starts = schedule(6, { ...recraft, startToleranceMs: 50 });
    expect(starts[5]).toBe(1_050);
  });

  test("a start is never before one already logged, nor before `at`", () => {
    expect(earliestStart([100, 5_000], 200, recraft)).toBe(5_000);
    expect(earliestStart([100], 7_000, recraft)).toBe(7_000);
  });

  test("the log keeps only what the larger window needs", () => {
    expect(logLength(recraft)).toBe(100);
    expect(
      reserveStart(
        Array.from({ length: 100 }, (_, i) => i * 700),
        0,
        recraft,
      ).log,
    ).toHaveLength(100);
  });

  test("for any readiness times and limits, no window ever holds more than its limit", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 100 }),
        (ready, perSecond, perMinute, tolerance) => {
          const config = { ...recraft, minuteMs: 6_000, maxPerSecond: perSecond, maxPerMinute: perMinute, startToleranceMs: tolerance };
          let log: number[] = [];
          const starts: number[] = [];
          for (const at of [...ready].sort((a, b) => a - b)) {
            const reserved = reserveStart(log, at, config);
            expect(reserved.start).toBeGreaterThanOrEqual(at);
            log = reserved.log;
            starts.push(reserved.start);
          }
          expect(maxInWindow(starts, config.secondMs)).toBeLessThanOrEqual(perSecond);
          expect(maxInWindow(starts, config.minuteMs)).toBeLessThanOrEqual(perMinute);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("allowed in flight", () => {
  const config = { ...recraft, maxConcurrency: 32 };

  test("Little's law on the latency: the burst rate times the hold time, with half again as headroom", () => {
    expect(sustainedSpacingMs(recraft)).toBe(600);
    expect(burstSpacingMs(recraft)).toBe(200);
    expect(allowedInFlight({ latencyMs: 2_000, limit: 32 }, config, 0)).toBe(15);
    expect(allowedInFlight({ latencyMs: 1_800, limit: 32 }, config, 200)).toBe(15);
  });

  test("never above PORTRAIT_MAX_CONCURRENCY, however slow the provider", () => {
    expect(allowedInFlight({ latencyMs: 600_000, limit: 1_000 }, config, 0)).toBe(32);
    expect(allowedInFlight({ limit: 1_000 }, { ...config, maxConcurrency: 6 }, 0)).toBe(6);
  });

  test("never above the AIMD ceiling (rounded down), never below one", () => {
    expect(allowedInFlight({ latencyMs: 60_000, limit: 3.5 }, config, 0)).toBe(3);
    expect(allowedInFlight({ latencyMs: 1, limit: 32 }, config, 0)).toBe(1);
    expect(allowedInFlight({ latencyMs: 60_000, limit: 0.5 }, config, 0)).toBe(1);
  });

  test("a start waits at most two second windows and the margin for its token", () => {
    expect(maxStartWaitMs({ ...recraft, startToleranceMs: 100 })).toBe(2_100);
  });
});
