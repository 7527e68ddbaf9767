/**
 * The pipeline's invariants, checked against the whole database. Any test can
 * call `expectInvariants(t)` after the system settles (or, for the ones that
 * hold at every instant, at any time). Portrait jobs and story runs alike.
 */
import { expect } from "vitest";
import { canMove, readCounts, STATUSES } from "../convex/lib/jobs";
import { canMove as canMoveRun } from "../convex/lib/storyRunMachine";
import type { Doc } from "../convex/_generated/dataModel";
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
    runs: await ctx.db.query("storyRuns").collect(),
    runEvents: await ctx.db.query("storyRunEvents").collect(),
    scheduled: await ctx.db.system.query("_scheduled_functions").collect(),
    dispatcher: await ctx.db.query("portraitDispatcher").first(),
    wakes: await ctx.db.query("portraitWakes").collect(),
    releases: await ctx.db.query("portraitReleases").collect(),
    slotEvents: await ctx.db.query("portraitSlotEvents").collect(),
  }));
}

/** Returns every violated invariant as a sentence (empty when all hold). */
export async function violations(t: Backend, { settled = true } = {}): Promise<string[]> {
  const { stories, jobs, events, counts, files, runs, runEvents, scheduled, dispatcher, wakes, releases, slotEvents } = await snapshot(t);
  const problems: string[] = [];
  const storyIds = new Set(stories.map((s) => s._id as string));

  // Each story has exactly one job, except a story that came with a portrait from
  // before this backend (the backfill skips those; a regeneration gives it one).
  for (const story of stories) {
    const own = jobs.filter((j) => j.storyId === story._id);
    if (own.length > 1 || (own.length === 0 && story.storageId === undefined)) problems.push(`story ${story._id} has ${own.length} jobs`);
  }

  // Each job's events form a valid path of the state machine ending in its status.
  for (const job of jobs) {
    const path = events.filter((e) => e.jobId === job._id).sort((a, b) => a._creationTime - b._creationTime);
    let at: string | null = null;
    let attempt = 1;
    for (const [i, e] of path.entries()) {
      if (e.from !== at) problems.push(`job ${job._id} event ${i} starts from ${e.from}, job was ${at}`);
      if (!canMove(e.from, e.to)) problems.push(`job ${job._id} event ${i} is an impossible edge ${e.from}->${e.to}`);
      if (e.from !== null && e.to === "pending") attempt++; // a retry or a regeneration
      if (e.attempt !== attempt) problems.push(`job ${job._id} event ${i} has attempt ${e.attempt}, expected ${attempt}`);
      at = e.to;
    }
    if (at !== job.status) problems.push(`job ${job._id} is ${job.status} but its events end at ${at}`);
    if (job.attempt !== attempt) problems.push(`job ${job._id} attempt ${job.attempt} but events count ${attempt}`);
    if (settled && job.slot.kind === "held") problems.push(`job ${job._id} still holds a slot after settling (${job.status})`);
    if (settled && (job.status === "requested" || job.status === "downloaded")) {
      problems.push(`job ${job._id} is stuck in ${job.status}`);
    }
    if ((job.status === "requested" || job.status === "downloaded") && job.slot.kind !== "held") {
      problems.push(`job ${job._id} is ${job.status} without a slot`);
    }
    problems.push(...slotPathProblems(job, slotEvents));
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

  // A job's storageId is the file of its last stored attempt (kept while a
  // regeneration is queued, in flight or failed), and the story's storageId is
  // that file; before any attempt is stored the story has no portrait, or one
  // from before this backend (a file older than the job).
  for (const job of jobs) {
    const path = events.filter((e) => e.jobId === job._id).sort((a, b) => a._creationTime - b._creationTime);
    const lastStored = path.filter((e) => e.to === "stored").at(-1);
    if ((lastStored !== undefined) !== (job.storageId !== undefined)) {
      problems.push(`job ${job._id} storageId=${job.storageId} but it has ${lastStored ? "a" : "no"} stored attempt`);
    }
    const file = files.find((f) => f._id === job.storageId);
    if (lastStored?.details?.bytes !== undefined && file && file.size !== lastStored.details.bytes) {
      problems.push(`job ${job._id} points at a file of ${file.size} bytes, its last stored attempt stored ${lastStored.details.bytes}`);
    }
    if (!storyIds.has(job.storyId)) continue;
    const story = stories.find((s) => s._id === job.storyId)!;
    if (job.storageId !== undefined) {
      if (story.storageId !== job.storageId)
        problems.push(`story ${story._id} storageId=${story.storageId} but its job's last stored file is ${job.storageId}`);
      if (job.status === "stored" && !file) problems.push(`job ${job._id} is stored but its file is missing`);
    } else if (story.storageId !== undefined) {
      const legacy = files.find((f) => f._id === story.storageId);
      if (!legacy || legacy._creationTime >= job._creationTime) {
        problems.push(`story ${story._id} storageId=${story.storageId} but its job (${job.status}) never stored a portrait`);
      }
    }
  }

  // Status counts equal a full count.
  for (const status of STATUSES) {
    const kept = counts[status];
    const actual = jobs.filter((j) => j.status === status).length;
    if (kept !== actual) problems.push(`count of ${status} is ${kept}, actual ${actual}`);
  }

  // Each story run's events form a valid path ending in its status; an inserted
  // run points at a story that exists or existed (its portrait job outlives it).
  for (const run of runs) {
    const path = runEvents.filter((e) => e.runId === run._id).sort((a, b) => a._creationTime - b._creationTime);
    let at: string | null = null;
    let attempt = 1;
    for (const [i, e] of path.entries()) {
      if (e.from !== at) problems.push(`run ${run._id} event ${i} starts from ${e.from}, run was ${at}`);
      if (!canMoveRun(e.from, e.to)) problems.push(`run ${run._id} event ${i} is an impossible edge ${e.from}->${e.to}`);
      if (e.from === "failed" && e.to === "pending") attempt++;
      if (e.attempt !== attempt) problems.push(`run ${run._id} event ${i} has attempt ${e.attempt}, expected ${attempt}`);
      at = e.to;
    }
    if (at !== run.status) problems.push(`run ${run._id} is ${run.status} but its events end at ${at}`);
    if (run.attempt !== attempt) problems.push(`run ${run._id} attempt ${run.attempt} but events count ${attempt}`);
    if ((run.status === "inserted") !== (run.storyId !== undefined))
      problems.push(`run ${run._id} is ${run.status} with storyId ${run.storyId}`);
    if (run.storyId && !storyIds.has(run.storyId) && !jobs.some((j) => j.storyId === run.storyId)) {
      problems.push(`run ${run._id} points at story ${run.storyId}, which never existed`);
    }
    if (run.status === "failed" && !run.error) problems.push(`run ${run._id} failed without an error`);
    if (settled && (run.status === "writing" || run.status === "repairing")) problems.push(`run ${run._id} is stuck in ${run.status}`);
    if (run.status === "pending") {
      const action = scheduled.find((fn) => fn._id === run.scheduledFunctionId);
      if (!action || (action.state.kind !== "pending" && action.state.kind !== "inProgress")) {
        if (settled) problems.push(`run ${run._id} is pending with no live action`);
      }
    }
  }
  for (const story of stories) {
    if (runs.filter((r) => r.storyId === story._id).length > 1) problems.push(`story ${story._id} was inserted by more than one run`);
  }
  // The dispatcher's count of held slots, less the releases it has not read yet, is the number of holders.
  const holders = jobs.filter((j) => j.slot.kind === "held").length;
  const believed = dispatcher ? dispatcher.holding - releases.length - wakes.filter((w) => w.release).length : 0;
  if (believed !== holders) problems.push(`the dispatcher counts ${believed} held slots, ${holders} jobs hold one`);

  // No secret anywhere in the database.
  const everything = JSON.stringify({ stories, jobs, events, counts, files, runs, runEvents });
  for (const secret of [RECRAFT_KEY, ANTHROPIC_KEY]) {
    if (everything.includes(secret)) problems.push(`a secret is stored in the database`);
  }
  return problems;
}

/**
 * Every change of a job's slot has its event (lib/slots.ts): the events are a
 * path none -granted-> held (-deferred/-claimed-> held)* -released-> none ...,
 * each recording the slot as it became, ending in the job's slot (the grant
 * that made it, when held).
 */
function slotPathProblems(job: Doc<"portraitJobs">, slotEvents: Doc<"portraitSlotEvents">[]): string[] {
  const problems: string[] = [];
  const path = slotEvents.filter((e) => e.jobId === job._id).sort((a, b) => a._creationTime - b._creationTime);
  let kind: "none" | "held" = "none";
  let grantedAt: number | undefined;
  for (const [i, e] of path.entries()) {
    const from = e.change === "granted" ? "none" : "held";
    const to = e.change === "released" ? "none" : "held";
    if (kind !== from) problems.push(`job ${job._id} slot event ${i} (${e.change}) from a slot that was ${kind}`);
    if (e.slot.kind !== to) problems.push(`job ${job._id} slot event ${i} (${e.change}) recorded a slot ${e.slot.kind}`);
    if (e.change === "released" && e.heldMs !== undefined && e.heldMs < 0)
      problems.push(`job ${job._id} slot event ${i} held ${e.heldMs} ms`);
    kind = to;
    grantedAt = e.slot.kind === "held" ? e.slot.grantedAt : undefined;
  }
  if (job.slot.kind !== kind) problems.push(`job ${job._id} slot is ${job.slot.kind} but its slot events end at ${kind}`);
  else if (job.slot.kind === "held" && job.slot.grantedAt !== grantedAt) {
    problems.push(`job ${job._id} holds a slot granted at ${job.slot.grantedAt}, its events say ${grantedAt}`);
  }
  return problems;
}

export async function expectInvariants(t: Backend, options?: { settled?: boolean }) {
  expect(await violations(t, options)).toEqual([]);
}
