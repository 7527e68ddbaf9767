/** Waiting on real timers, for tests, the demo and the bench alike. */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` (sync or async) every `pollMs` until it holds; throws
 * `message` (a function: read when it throws) after `timeoutMs`. For waits no
 * event marks.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  {
    timeoutMs = 5_000,
    pollMs = 5,
    message = "condition not reached in time",
  }: { timeoutMs?: number; pollMs?: number; message?: string | (() => string) } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`until: ${typeof message === "function" ? message() : message} after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}
