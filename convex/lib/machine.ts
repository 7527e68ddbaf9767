/**
 * The skeleton both state machines instantiate (portrait jobs, lib/jobs.ts;
 * story runs, lib/storyRunMachine.ts), under the same names:
 *
 * - `canMove`: the allowed moves (creation, from `null`, only to `pending`);
 * - `current`: the compare-and-set read, the row if it is in the status (and
 *   attempt) the caller expects, else null with a `<prefix>.refused` log line;
 * - `move`: one step, in the caller's transaction: the row patched, its event
 *   appended (with whatever else the machine writes with it) and a
 *   `<prefix>.transition` log line. Back to `pending` is always a new attempt;
 * - `fail`: the retry policy. The row fails; a transient error with attempts
 *   left goes back to `pending` as the next attempt after the backoff, and the
 *   machine's `requeue` gives it its place (a queue position, an action);
 * - `requeue`: an immediate new attempt, for operator commands (lib/commands.ts).
 *
 * The action-side retry of a transition that throws is lib/transitionRetry.ts.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { logger } from "./log";

type Table = "portraitJobs" | "storyRuns";
type Status<T extends Table> = Doc<T>["status"];
type MachineError = { code: string; message: string };

/** One step as the machine records it. */
export type Step<T extends Table, E, D> = {
  from: Status<T> | null;
  to: Status<T>;
  attempt: number;
  at: number;
  error?: E;
  details?: D;
};

export type Change<E, D> = { error?: E; details?: D };

export type MachineSpec<T extends Table, E extends MachineError, D, C extends Change<E, D>> = {
  table: T;
  /** For the refusal of an impossible edge: "portrait job", "story run". */
  noun: string;
  /** The log's source and its events' prefix (`portrait.transition`, `story.refused`), and the id's field name in them. */
  log: { source: string; prefix: string; idField: string };
  next: Record<Status<T>, Status<T>[]>;
  /** A condition of the compare-and-set read besides status and attempt (a portrait job must hold its slot). */
  holds?: (row: Doc<T>) => boolean;
  /** What an error and a step's details become before they are kept anywhere (redacted). */
  sanitize: (error: E) => E;
  sanitizeDetails?: (details: D | undefined) => D | undefined;
  /** The row's fields a move sets besides status, attempt, updatedAt and error. */
  patch: (row: Doc<T>, step: Step<T, E, D>, change: C) => Partial<Doc<T>>;
  /** Appends the step's event, and whatever else the machine writes with it (counts, the slot's release). */
  record: (ctx: MutationCtx, row: Doc<T>, step: Step<T, E, D>, change: C) => Promise<void>;
  /** The transition log line's fields besides the id, attempt, from, to and code. */
  logFields: (row: Doc<T>, step: Step<T, E, D>, change: C) => Record<string, unknown>;
  retry: {
    isTransient: (error: E) => boolean;
    maxAttempts: () => number;
    delayMs: (attempt: number, error: E) => number;
    /** Gives a row just moved back to `pending` its place: due at `runAt`. */
    requeue: (ctx: MutationCtx, row: Doc<T>, runAt: number) => Promise<void>;
  };
};

export function defineMachine<T extends Table, E extends MachineError, D, C extends Change<E, D>>(spec: MachineSpec<T, E, D, C>) {
  const log = logger(spec.log.source);
  const pending = "pending" as Status<T>;
  const failed = "failed" as Status<T>;

  function canMove(from: Status<T> | null, to: Status<T>): boolean {
    return from === null ? to === pending : spec.next[from].includes(to);
  }

  function logStep(row: Doc<T>, step: Step<T, E, D>, change: C) {
    const code = (step.error as MachineError | undefined)?.code ?? null;
    const line = {
      [spec.log.idField]: row._id,
      attempt: step.attempt,
      from: step.from,
      to: step.to,
      code,
      ...spec.logFields(row, step, change),
    };
    log[step.to === failed ? "warn" : "info"](`${spec.log.prefix}.transition`, line);
  }

  /** The compare-and-set read: the row if it is in `status` (and `attempt`) and holds what the machine requires, else null. */
  async function current(ctx: MutationCtx, id: Id<T>, status: Status<T>, attempt?: number): Promise<Doc<T> | null> {
    const row = (await ctx.db.get(spec.table, id as never)) as Doc<T> | null;
    const ok = !!row && row.status === status && (attempt === undefined || row.attempt === attempt) && (spec.holds?.(row) ?? true);
    if (!ok) {
      const actual = row ? `${row.status}#${row.attempt}` : "missing";
      log.warn(`${spec.log.prefix}.refused`, { [spec.log.idField]: id, attempt, expected: status, actual });
    }
    return ok ? row : null;
  }

  /** Moves a row one step and records it; the caller has done the compare-and-set. Returns the row as it now is. */
  async function move(ctx: MutationCtx, row: Doc<T>, to: Status<T>, change: C = {} as C): Promise<Doc<T>> {
    if (!canMove(row.status, to)) throw new Error(`${spec.noun} ${row._id}: no transition ${row.status} -> ${to}`);
    const at = Date.now();
    const error = change.error && spec.sanitize(change.error);
    const details = spec.sanitizeDetails ? spec.sanitizeDetails(change.details) : change.details;
    const attempt = to === pending ? row.attempt + 1 : row.attempt;
    const step: Step<T, E, D> = { from: row.status, to, attempt, at, error, details };
    const patch = { ...spec.patch(row, step, change), status: to, attempt, updatedAt: at, error };
    await ctx.db.patch(spec.table, row._id as never, patch as never);
    await spec.record(ctx, row, step, change);
    logStep(row, step, change);
    return (await ctx.db.get(spec.table, row._id as never)) as Doc<T>;
  }

  /** Records a row's creation (already inserted in `pending`): its first event and log line. */
  async function created(ctx: MutationCtx, row: Doc<T>, details?: D) {
    const step: Step<T, E, D> = { from: null, to: pending, attempt: row.attempt, at: row.updatedAt, details };
    await spec.record(ctx, row, step, {} as C);
    logStep(row, step, {} as C);
  }

  /** Back to `pending` as the next attempt, due at once (an operator's retry). */
  async function requeue(ctx: MutationCtx, row: Doc<T>, reason: string): Promise<Doc<T>> {
    const next = await move(ctx, row, pending, { details: { reason } } as C);
    await spec.retry.requeue(ctx, next, next.updatedAt);
    return next;
  }

  /** Fails a row; a transient failure with attempts left goes back to `pending` as the next attempt, due after the backoff. */
  async function fail(ctx: MutationCtx, row: Doc<T>, error: E, details?: D): Promise<void> {
    const done = await move(ctx, row, failed, { error, details } as C);
    if (done.attempt >= spec.retry.maxAttempts() || !spec.retry.isTransient(error)) return;
    const retryAt = done.updatedAt + spec.retry.delayMs(done.attempt, error);
    const next = await move(ctx, done, pending, { details: { retryAt, reason: `automatic retry after ${error.code}` } } as C);
    await spec.retry.requeue(ctx, next, retryAt);
  }

  return { canMove, current, move, created, requeue, fail, isTransient: spec.retry.isTransient };
}
