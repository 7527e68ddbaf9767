/**
 * The pipeline's invariants, checked against the whole database. Any test can
 * call `expectInvariants(t)` after the system settles (or, for the ones that
 * hold at every instant, at any time).
 */
import { expect } from "vitest";
import { canMove, readCounts, STATUSES } from "../convex/lib/jobs";
import type { Backend } from "./harness";
import { ANTHROPIC_KEY, RECRAFT_KEY } from "./harness";

export async function snapshot(t: Backend) {
  return t.run(async (ctx) => ({
    stories: await ctx.db.query("stories").collect(),
    jobs: await ctx.db.query("portraitJobs").collect(),
    events: await ctx.db.query("portraitJobEvents").collect(),
    // The status counts as the admin reads them (kept in lib/counts.ts: totals plus unfolded rows).
    counts: await readCounts(ctx),
    files: await ctx.db.system.query("_storage").collect(),
    dispatcher: await ctx.db.query("portraitDispatcher").first(),
    wakes: await ctx.db.query("portraitWakes").collect(),
  }));
}

/** Returns every violated invariant as a sentence (empty when all hold). */
export async function violations(t: Backend, { settled = true } = {}): Promise<string[]> {
  const { stories, jobs, events, counts, files, dispatcher, wakes } = await snapshot(t);
  const problems: string[] = [];
  const storyIds = new Set(stories.map((s) => s._id as string));

  // Each story has exactly one job.
  for (const story of stories) {
    const own = jobs.filter((j) => j.storyId === story._id);
    if (own.length !== 1) problems.push(`story ${story._id} has ${own.length} jobs`);
  }

  // Each job's events form a valid path of the state machine ending in its status.
  for (const job of jobs) {
    const path = events.filter((e) => e.jobId === job._id).sort((a, b) => a._creationTime - b._creationTime);
    let at: string | null = null;
    let attempt = 1;
    for (const [i, e] of path.entries()) {
      if (e.from !== at) problems.push(`job ${job._id} event ${i} starts from ${e.from}, job was ${at}`);
      if (!canMove(e.from, e.to)) problems.push(`job ${job._id} event ${i} is an impossible edge ${e.from}->${e.to}`);
      if (e.from === "failed" && e.to === "pending") attempt++;
      if (e.attempt !== attempt) problems.push(`job ${job._id} event ${i} has attempt ${e.attempt}, expected ${attempt}`);
      at = e.to;
    }
    if (at !== job.status) problems.push(`job ${job._id} is ${job.status} but its events end at ${at}`);
    if (job.attempt !== attempt) problems.push(`job ${job._id} attempt ${job.attempt} but events count ${attempt}`);
    if (settled && job.holdsSlot) problems.push(`job ${job._id} still holds a slot after settling (${job.status})`);
    if (settled && (job.status === "requested" || job.status === "downloaded")) {
      problems.push(`job ${job._id} is stuck in ${job.status}`);
    }
  }

  // Every file belongs to exactly one story (at rest: between an action's store and
  // its stored transition the file is not referenced yet); a story's file exists.
  const fileIds = new Set(files.map((f) => f._id as string));
  for (const file of files) {
    const owners = stories.filter((s) => s.storageId === file._id);
    if (owners.length > 1 || (settled && owners.length === 0)) problems.push(`file ${file._id} belongs to ${owners.length} stories`);
  }
  for (const story of stories) {
    if (story.storageId && !fileIds.has(story.storageId)) problems.push(`story ${story._id} points at a missing file`);
  }

  // A story's storageId is set iff its job is stored (and it is the job's file).
  for (const job of jobs) {
    if (!storyIds.has(job.storyId)) continue;
    const story = stories.find((s) => s._id === job.storyId)!;
    if ((job.status === "stored") !== (story.storageId !== undefined)) {
      problems.push(`story ${story._id} storageId=${story.storageId} but its job is ${job.status}`);
    }
    if (job.status === "stored" && job.storageId !== story.storageId) problems.push(`job ${job._id} and its story disagree on the file`);
  }

  // Status counts equal a full count.
  for (const status of STATUSES) {
    const kept = counts[status];
    const actual = jobs.filter((j) => j.status === status).length;
    if (kept !== actual) problems.push(`count of ${status} is ${kept}, actual ${actual}`);
  }

  // The dispatcher's count of held slots, less the releases it has not read yet, is the number of holders.
  const holders = jobs.filter((j) => j.holdsSlot).length;
  const believed = dispatcher ? dispatcher.holding - wakes.filter((w) => w.release).length : 0;
  if (believed !== holders) problems.push(`the dispatcher counts ${believed} held slots, ${holders} jobs hold one`);

  // No secret anywhere in the database.
  const everything = JSON.stringify({ stories, jobs, events, counts, files });
  for (const secret of [RECRAFT_KEY, ANTHROPIC_KEY]) {
    if (everything.includes(secret)) problems.push(`a secret is stored in the database`);
  }
  return problems;
}

export async function expectInvariants(t: Backend, options?: { settled?: boolean }) {
  expect(await violations(t, options)).toEqual([]);
}
