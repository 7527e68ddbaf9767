/**
 * Exact counts (portrait jobs per status) with no document that every
 * transition writes. Counts are kept per `kind`; only portrait jobs use them
 * today (lib/jobs.ts). The schema and the sweep also know a "story" kind, but
 * no story-run transition writes one.
 *
 * A transition adds its change to a document of its own: one `countDeltas` row
 * per key (the job's id), so two jobs' transitions never touch the same
 * document. The dispatcher loop (and the sweep cron, every minute) folds
 * settled rows into the kind's `countTotals` document and deletes them, in one
 * transaction. A read sums the totals and the rows not folded yet:
 *
 *   count = totals + Σ unfolded deltas
 *
 * which is exact at every instant, because a delta is either still in its row
 * or already in the totals, never both and never neither (the fold moves it in
 * one transaction). The read costs one document plus the unfolded rows, which
 * are bounded by recent activity (the keys touched since the last fold), not
 * by how many jobs exist; past MAX_UNFOLDED_READ of them it says it is approximate.
 * Every fold is one bounded batch (FOLD_BATCH rows); the sweep schedules more.
 */
import type { MutationCtx, QueryCtx } from "../_generated/server";

export type CountKind = "portrait" | "story";
type Deltas = Partial<Record<string, number>>;

function add(into: Record<string, number>, deltas: Deltas) {
  for (const [name, delta] of Object.entries(deltas)) {
    if (!delta) continue;
    const next = (into[name] ?? 0) + delta;
    if (next === 0) delete into[name];
    else into[name] = next;
  }
}

/** Adds `deltas` (e.g. { pending: -1, requested: 1 }) to the counts of `kind`, in the key's own row. */
export async function adjustCounts(ctx: MutationCtx, kind: CountKind, key: string, deltas: Deltas): Promise<void> {
  if (Object.values(deltas).every((d) => !d)) return;
  const row = await ctx.db
    .query("countDeltas")
    .withIndex("by_key", (q) => q.eq("kind", kind).eq("key", key))
    .unique();
  const now = Date.now();
  if (row) {
    const merged = { ...row.deltas };
    add(merged, deltas);
    await ctx.db.patch("countDeltas", row._id, { deltas: merged, updatedAt: now });
  } else {
    const fresh: Record<string, number> = {};
    add(fresh, deltas);
    await ctx.db.insert("countDeltas", { kind, key, deltas: fresh, updatedAt: now });
  }
}

/** Unfolded rows a read sums at most: far under a query's 32,000 documents, whatever a backfill left. */
export const MAX_UNFOLDED_READ = 4_000;

/**
 * Every count of `kind` (a name with no row reads as absent; callers default it
 * to 0). Exact unless more than MAX_UNFOLDED_READ rows wait to be folded (a
 * burst of thousands of transitions in the last seconds): then the sum of the
 * totals and the oldest rows, with `exact: false`, rather than a read that fails.
 */
export async function readCounts(ctx: QueryCtx, kind: CountKind): Promise<{ counts: Record<string, number>; exact: boolean }> {
  const totals = await ctx.db
    .query("countTotals")
    .withIndex("by_kind", (q) => q.eq("kind", kind))
    .unique();
  const counts: Record<string, number> = { ...(totals?.counts ?? {}) };
  const unfolded = await ctx.db
    .query("countDeltas")
    .withIndex("by_kind", (q) => q.eq("kind", kind))
    .take(MAX_UNFOLDED_READ + 1);
  for (const row of unfolded.slice(0, MAX_UNFOLDED_READ)) add(counts, row.deltas);
  return { counts, exact: unfolded.length <= MAX_UNFOLDED_READ };
}

export const FOLD_BATCH = 256;

/**
 * Moves the deltas of rows not touched for `settledMs` into the totals, at
 * most `limit` rows. Returns how many rows it folded (`limit`: call again).
 * The dispatcher loop, the sweep and its follow-up folds call this; their
 * writes to the totals document are serialised by Convex's optimistic concurrency.
 */
export async function foldCounts(
  ctx: MutationCtx,
  kind: CountKind,
  { settledMs = 0, limit = FOLD_BATCH }: { settledMs?: number; limit?: number } = {},
): Promise<number> {
  const rows = await ctx.db
    .query("countDeltas")
    .withIndex("by_kind", (q) => q.eq("kind", kind).lte("updatedAt", Date.now() - settledMs))
    .take(limit);
  if (rows.length === 0) return 0;
  const totals = await ctx.db
    .query("countTotals")
    .withIndex("by_kind", (q) => q.eq("kind", kind))
    .unique();
  const counts: Record<string, number> = { ...(totals?.counts ?? {}) };
  for (const row of rows) {
    add(counts, row.deltas);
    await ctx.db.delete("countDeltas", row._id);
  }
  if (totals) await ctx.db.patch("countTotals", totals._id, { counts });
  else await ctx.db.insert("countTotals", { kind, counts });
  return rows.length;
}
