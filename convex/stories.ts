import { ConvexError, v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { normalizeStory, playabilityProblems, slugify } from "./lib/caseFile";
import { kickDispatcher } from "./lib/dispatch";
import { createJob } from "./lib/jobs";
import { logger } from "./lib/log";
import { startRun } from "./lib/storyRunMachine";
import { caseFileFields, storyFields, type StoryInput } from "./validators";

const log = logger("stories");

/**
 * Inserts a story, its portrait job (`pending`) and the job's first event, and
 * hands the job to the dispatcher, which schedules `generatePatientPortrait`
 * when a slot is free: one transaction, so a story never exists without its job
 * and a failed insert schedules nothing.
 *
 * The slug is the game's `slugify(title)`, so the case list's links resolve.
 * Refuses only what the game cannot show or play (a blank title, a title with
 * no letter or digit to slug, a title whose slug another story has, no
 * chapters, a chapter a US keyboard cannot type after safe typographic
 * substitutions). A blank or over-long image prompt keeps the story: its
 * portrait job fails with `empty_prompt` or `prompt_too_long` before calling Recraft.
 */
export async function insertCaseFile(ctx: MutationCtx, input: StoryInput): Promise<Id<"stories">> {
  const story = normalizeStory(input);
  const problems = playabilityProblems(story);
  if (problems.length > 0) throw new ConvexError(`the game cannot play this case file: ${problems.join("; ")}`);
  const slug = slugify(story.title);
  const owner = await storyWithSlug(ctx, slug);
  if (owner) throw new ConvexError(slugTakenMessage(story.title, slug, owner));
  const now = Date.now();
  const storyId = await ctx.db.insert("stories", { ...story, slug, createdAt: now });
  await createJob(ctx, (await ctx.db.get("stories", storyId))!);
  await kickDispatcher(ctx);
  return storyId;
}

/** The story the game's case page would show for `slug`, if any. */
export async function storyWithSlug(ctx: QueryCtx, slug: string): Promise<Doc<"stories"> | null> {
  return ctx.db
    .query("stories")
    .withIndex("by_slug", (q) => q.eq("slug", slug))
    .first();
}

export function slugTakenMessage(title: string, slug: string, owner: Doc<"stories">): string {
  return `the title ${JSON.stringify(title)} has the slug "${slug}", which case file ${JSON.stringify(owner.title)} (${owner._id}) already has; pick another title`;
}

/**
 * The game's own insert: a case file without a slug (the slug is derived from
 * the title). A `slug` may be passed for callers that send one, and must then
 * equal `slugify(title)`: a slug the frontend would never link to is refused.
 */
export const insertStory = internalMutation({
  args: { ...caseFileFields, slug: v.optional(v.string()) },
  returns: v.id("stories"),
  handler: async (ctx, { slug, ...story }) => {
    if (slug !== undefined && slug !== slugify(story.title)) {
      throw new ConvexError(
        `slug "${slug}" is not the game's slug of the title ${JSON.stringify(story.title)} ("${slugify(story.title)}"); leave it out`,
      );
    }
    return insertCaseFile(ctx, story);
  },
});

/**
 * Deletes a story and its portrait file. Its job and events stay for the audit;
 * a job still in flight fails with `story_missing` at its next step.
 */
export const deleteStory = internalMutation({
  args: { storyId: v.id("stories") },
  returns: v.boolean(),
  handler: async (ctx, { storyId }) => {
    const story = await ctx.db.get("stories", storyId);
    if (!story) return false;
    if (story.storageId) await ctx.storage.delete(story.storageId);
    await ctx.db.delete("stories", storyId);
    return true;
  },
});

const publicStory = v.object({
  _id: v.id("stories"),
  _creationTime: v.number(),
  ...storyFields,
  createdAt: v.number(),
  storageId: v.optional(v.id("_storage")),
  imageUrl: v.union(v.string(), v.null()),
});

/** The game's story shape: the document and its portrait's URL, null until a portrait is stored. */
async function withImageUrl(ctx: QueryCtx, story: Doc<"stories">) {
  return { ...story, imageUrl: story.storageId ? await ctx.storage.getUrl(story.storageId) : null };
}

const newest = (ctx: QueryCtx) => ctx.db.query("stories").withIndex("by_createdAt").order("desc");

/** A story by id, or with no id the newest (the game's "play today's story"). */
export const getStory = query({
  args: { storyId: v.optional(v.id("stories")) },
  returns: v.union(publicStory, v.null()),
  handler: async (ctx, { storyId }) => {
    const story = storyId ? await ctx.db.get("stories", storyId) : await newest(ctx).first();
    return story && withImageUrl(ctx, story);
  },
});

/** The newest story (kept for callers of the earlier name; the game calls getStory({})). */
export const getLatestStory = query({
  args: {},
  returns: v.union(publicStory, v.null()),
  handler: async (ctx) => {
    const story = await newest(ctx).first();
    return story && withImageUrl(ctx, story);
  },
});

/**
 * How many stories the case list returns, newest first. The list is one
 * reactive query, so it is bounded: at a story a day, over a year and a half
 * of case files, a few MB of text, well under a query's read and return limits.
 */
export const CASE_LIST_LIMIT = 500;

/** The case list: the newest CASE_LIST_LIMIT stories, newest first, each with its portrait URL. */
export const getAllStories = query({
  args: {},
  returns: v.array(publicStory),
  handler: async (ctx) => Promise.all((await newest(ctx).take(CASE_LIST_LIMIT)).map((story) => withImageUrl(ctx, story))),
});

/** The case page: the story whose slug is `slug` (the game's slugify of its title), or null. */
export const getStoryBySlug = query({
  args: { slug: v.string() },
  returns: v.union(publicStory, v.null()),
  handler: async (ctx, { slug }) => {
    const story = await storyWithSlug(ctx, slug);
    return story && withImageUrl(ctx, story);
  },
});

/**
 * The game's own entry points, kept so the calls it had already scheduled
 * before this backend was deployed (a `stories:generateStory` retry, a
 * `stories:generatePatientPortrait` for a story it had just written) hand over
 * to this backend instead of failing. New code calls
 * `storyRuns:generateStory` and lets `insertStory` create portrait jobs.
 */

/** A scheduled retry of the game's story generation: one story run (its own retries replace `retryCount`). */
export const generateStory = internalMutation({
  args: { retryCount: v.optional(v.number()) },
  returns: v.id("storyRuns"),
  handler: async (ctx, { retryCount }) => {
    log.info("story.handover", { from: "stories:generateStory", retryCount: retryCount ?? 0 });
    return startRun(ctx);
  },
});

/**
 * A scheduled portrait of the game's: the story's portrait job, created if it
 * has neither a portrait nor a job (the prompt argument is ignored: the job
 * paints the story's own prompt through the voice).
 */
export const generatePatientPortrait = internalMutation({
  args: { storyId: v.id("stories"), imageGenerationPrompt: v.optional(v.string()) },
  returns: v.union(v.literal("queued"), v.literal("has_job"), v.literal("has_portrait"), v.literal("story_missing")),
  handler: async (ctx, { storyId }) => {
    const story = await ctx.db.get("stories", storyId);
    if (!story) return "story_missing";
    if (story.storageId) return "has_portrait";
    const job = await ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", storyId))
      .first();
    if (job) return "has_job";
    await createJob(ctx, story, { at: Date.now(), reason: "handed over from stories:generatePatientPortrait" });
    await kickDispatcher(ctx);
    return "queued";
  },
});
