/** Everything the demo's report shows, read from the embedded backend in one transaction. */
import type { Doc } from "../../convex/_generated/dataModel.js";
import type { Backend } from "./backend.ts";

export interface StorySnapshot {
  story: Doc<"stories">;
  job: Doc<"portraitJobs"> | null;
  events: Doc<"portraitJobEvents">[];
  /** The stored portrait's bytes, when the job reached `stored`. */
  png: Uint8Array | null;
}

export async function readSnapshot(t: Backend): Promise<StorySnapshot[]> {
  const rows = await t.run(async (ctx) => {
    const stories = await ctx.db.query("stories").withIndex("by_createdAt").collect();
    return Promise.all(
      stories.map(async (story) => {
        const job = await ctx.db
          .query("portraitJobs")
          .withIndex("by_story", (q) => q.eq("storyId", story._id))
          .first();
        const events = job
          ? await ctx.db
              .query("portraitJobEvents")
              .withIndex("by_job", (q) => q.eq("jobId", job._id))
              .collect()
          : [];
        const blob = story.storageId ? await ctx.storage.get(story.storageId) : null;
        return { story, job, events, png: blob ? await blob.arrayBuffer() : null };
      }),
    );
  });
  return rows.map((row) => ({ ...row, png: row.png && new Uint8Array(row.png) }));
}

export interface Step {
  from: string | null;
  to: string;
  attempt: number;
  at: number;
  /** Time since the job's previous event (0 for the first). */
  stepMs: number;
  event: Doc<"portraitJobEvents">;
}

export function stepsOf(events: Doc<"portraitJobEvents">[]): Step[] {
  return events.map((event, i) => ({
    from: event.from,
    to: event.to,
    attempt: event.attempt,
    at: event.at,
    stepMs: i === 0 ? 0 : event.at - events[i - 1]!.at,
    event,
  }));
}

export interface RunSnapshot {
  run: Doc<"storyRuns">;
  events: Doc<"storyRunEvents">[];
  /** The slug of the story it inserted (null if none, or deleted). */
  slug: string | null;
}

/** Every story run with its events, oldest first. */
export async function readRunSnapshot(t: Backend): Promise<RunSnapshot[]> {
  return t.run(async (ctx) => {
    const runs = await ctx.db.query("storyRuns").collect();
    return Promise.all(
      runs.map(async (run) => ({
        run,
        events: await ctx.db
          .query("storyRunEvents")
          .withIndex("by_run", (q) => q.eq("runId", run._id))
          .collect(),
        slug: run.storyId ? ((await ctx.db.get(run.storyId))?.slug ?? null) : null,
      })),
    );
  });
}
