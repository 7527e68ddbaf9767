/**
 * How an action calls a transition (portrait jobs and story runs alike): a
 * transition that throws (a write conflict that outlasted Convex's own
 * retries, a transient backend error) is tried again with a jittered backoff.
 * Transitions compare and set, so a retry of one that did commit is refused or
 * recognised, never applied twice. A refusal the mutation meant (a
 * ConvexError) is not retried. After the last try the error reaches the
 * caller, and the sweep recovers the row.
 */
import { ConvexError } from "convex/values";
import { backoffMs } from "./backoff";
import { logger } from "./log";
import { describeError } from "./redact";

const log = logger("transitions");

const TRANSITION_ATTEMPTS = 5;
const TRANSITION_BACKOFF = { initialMs: 100, maxMs: 1_600, jitter: true };

export async function retryTransition<T>(event: string, fields: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= TRANSITION_ATTEMPTS || error instanceof ConvexError) throw error;
      const delayMs = backoffMs(attempt, TRANSITION_BACKOFF);
      log.warn(event, { ...fields, attempt, delayMs, message: describeError(error) });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
