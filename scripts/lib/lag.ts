/**
 * A lagging scheduler for the embedded backend, like a busy deployment's:
 * every scheduled function starts late (a delay drawn per start, e.g. random
 * with occasional spikes) and at most `parallelism` of them run at once, the
 * rest waiting in line (Convex's SCHEDULED_JOB_EXECUTION_PARALLELISM; an
 * action holds its place for its whole run).
 *
 * convex-test starts each scheduled function through one `setTimeout`, from
 * its `frameworkSetTimeout`, read from `globalThis` outside any handler. The
 * harness replaces that global for the test's or bench's duration and delays
 * only the timers convex-test's scheduler registers; every other timer (the
 * pipeline's own, undici's) runs untouched. `restore()` puts the original back.
 */

export type LagOptions = {
  /** Extra delay for one start, in ms (called once per scheduled function). */
  delayMs: () => number;
  /** Scheduled functions running at once; the rest wait for a place. Unlimited by default. */
  parallelism?: number;
};

export type LagStats = { starts: number; maxRunning: number; maxWaiting: number; delayedMs: number };

/** Uniform `[0, maxMs)` plus, one start in `spikeEvery`, another `spikeMs`. */
export function randomLag({ maxMs, spikeEvery, spikeMs }: { maxMs: number; spikeEvery?: number; spikeMs?: number }): () => number {
  return () => Math.random() * maxMs + (spikeEvery && spikeMs && Math.random() < 1 / spikeEvery ? spikeMs : 0);
}

function fromConvexTestScheduler(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 6;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  return stack.includes("frameworkSetTimeout");
}

export function lagScheduler(options: LagOptions): { stats: LagStats; restore(): void } {
  const original = globalThis.setTimeout;
  const stats: LagStats = { starts: 0, maxRunning: 0, maxWaiting: 0, delayedMs: 0 };
  let running = 0;
  const waiting: (() => void)[] = [];

  const release = () => {
    running--;
    waiting.shift()?.();
  };
  // Runs convex-test's start callback, and holds a place until the function it starts settles.
  const start = (callback: () => void) => {
    running++;
    stats.starts++;
    stats.maxRunning = Math.max(stats.maxRunning, running);
    let started: Promise<unknown> | undefined;
    const add = Set.prototype.add;
    // The callback hands the function's promise to convex-test's own in-flight set: catch it there.
    Set.prototype.add = function (this: Set<unknown>, value: unknown) {
      if (value instanceof Promise) started = value;
      return add.call(this, value);
    };
    try {
      callback();
    } finally {
      Set.prototype.add = add;
    }
    if (started) started.then(release, release);
    else release();
  };
  const lagged = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (typeof callback !== "function" || !fromConvexTestScheduler()) return original(callback, ms, ...args);
    const extra = Math.max(0, options.delayMs());
    stats.delayedMs += extra;
    return original(
      () => {
        if (options.parallelism === undefined || running < options.parallelism) start(() => callback(...args));
        else {
          waiting.push(() => start(() => callback(...args)));
          stats.maxWaiting = Math.max(stats.maxWaiting, waiting.length);
        }
      },
      (ms ?? 0) + extra,
    );
  }) as typeof setTimeout;
  globalThis.setTimeout = lagged;
  return {
    stats,
    restore() {
      if (globalThis.setTimeout === lagged) globalThis.setTimeout = original;
    },
  };
}
