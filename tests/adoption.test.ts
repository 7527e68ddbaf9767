/**
 * Adoption by an existing Convex app: the game's schema (Convex Auth's tables,
 * `users`, `highscores`) with this project's tables spread in, and its crons
 * with this project's registered on them. A story runs to a stored portrait on
 * that schema, and a story the game wrote before adopting gets one through the
 * backfill.
 */
import { cronJobs, defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { registerPortraitCrons } from "../convex/lib/crons";
import { portraitTables } from "../convex/tables";
import { caseFile, modules, settle, startStack, type Backend, type Stack } from "./harness";
import { expectInvariants } from "./invariants";

// The shape of @convex-dev/auth's `authTables` (not a dependency here): what
// matters is that they sit beside this project's tables in one schema.
const authTables = {
  authSessions: defineTable({ userId: v.id("users"), expirationTime: v.number() }).index("userId", ["userId"]),
  authAccounts: defineTable({
    userId: v.id("users"),
    provider: v.string(),
    providerAccountId: v.string(),
    secret: v.optional(v.string()),
  })
    .index("userIdAndProvider", ["userId", "provider"])
    .index("providerAndAccountId", ["provider", "providerAccountId"]),
  authRefreshTokens: defineTable({ sessionId: v.id("authSessions"), expirationTime: v.number() }).index("sessionId", ["sessionId"]),
};

// The game's schema (BlackWolf0x/type-to-death app-next/convex/schema.ts), its
// own `stories` replaced by this project's, which accepts the game's documents.
const gameSchema = defineSchema({
  ...authTables,
  users: defineTable({
    username: v.optional(v.string()),
    email: v.optional(v.string()),
    emailVerificationTime: v.optional(v.number()),
  })
    .index("email", ["email"])
    .index("username", ["username"]),
  highscores: defineTable({
    storyId: v.id("stories"),
    userId: v.id("users"),
    wordPerMinute: v.number(),
    accuracy: v.number(),
    timeTaken: v.number(),
    score: v.number(),
    createdAt: v.number(),
  })
    .index("by_score", ["score"])
    .index("by_user", ["userId"]),
  ...portraitTables,
});

let stack: Stack;
let game: ReturnType<typeof newGameBackend>;
const newGameBackend = () => convexTest(gameSchema, modules);
beforeEach(async () => {
  stack = await startStack();
  game = newGameBackend();
});
afterEach(async () => {
  try {
    await expectInvariants(game as unknown as Backend);
  } finally {
    await stack.close();
  }
});

test("on the game's schema a story runs to a stored portrait, and a story from before gets one through the backfill", async () => {
  // A player and a story the game wrote before adopting this backend: its fields only.
  const { userId, oldStoryId } = await game.run(async (ctx) => {
    const userId = await ctx.db.insert("users", { username: "nightnurse", email: "nurse@asylum.test" });
    const { title, slug, introduction, chapters, patientName, patientNumber, story, imageGenerationPrompt } = caseFile({ slug: "the-old-ward" });
    const oldStoryId = await ctx.db.insert("stories", {
      title,
      slug,
      introduction,
      chapters,
      patientName,
      patientNumber,
      story,
      imageGenerationPrompt,
      createdAt: Date.UTC(2025, 5, 1),
    });
    await ctx.db.insert("authSessions", { userId, expirationTime: Date.now() + 60_000 });
    await ctx.db.insert("highscores", { storyId: oldStoryId, userId, wordPerMinute: 61, accuracy: 0.97, timeTaken: 312, score: 5917, createdAt: Date.now() });
    return { userId, oldStoryId };
  });

  const storyId = await game.mutation(internal.stories.insertStory, caseFile({ title: "The New Ward", slug: "the-new-ward" }));
  await settle(game as unknown as Backend);
  const latest = await game.query(api.stories.getLatestStory, {});
  expect(latest).toMatchObject({ _id: storyId, title: "The New Ward", portraitUrl: expect.stringMatching(/^https?:\/\//) });
  expect((await game.query(api.stories.getStory, { storyId: oldStoryId }))!.portraitUrl).toBeNull();

  await game.mutation(internal.portraits.backfill, {});
  await settle(game as unknown as Backend);
  const old = await game.query(api.stories.getStory, { storyId: oldStoryId });
  expect(old).toMatchObject({ slug: "the-old-ward", portraitUrl: expect.stringMatching(/^https?:\/\//) });
  expect(stack.recraft.requests).toHaveLength(2);

  // The game's own tables are untouched by the pipeline.
  const [users, highscores, sessions] = await game.run(async (ctx) => [
    await ctx.db.query("users").collect(),
    await ctx.db.query("highscores").collect(),
    await ctx.db.query("authSessions").collect(),
  ]);
  expect(users.map((u) => u._id)).toEqual([userId]);
  expect(highscores).toMatchObject([{ storyId: oldStoryId, userId, score: 5917 }]);
  expect(sessions).toHaveLength(1);
});

test("registerPortraitCrons adds the recovery sweep beside the game's own crons", () => {
  const crons = cronJobs();
  crons.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.storyRuns.dailyStory, {});
  registerPortraitCrons(crons);
  expect(Object.keys(crons.crons).sort()).toEqual(["generate daily story", "sweep stalled portrait jobs"]);
  expect(crons.crons["sweep stalled portrait jobs"]).toMatchObject({ name: "portraits:sweep", schedule: { type: "interval", minutes: 1 } });
});
