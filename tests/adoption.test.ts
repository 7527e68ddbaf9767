/**
 * The README's "Moving the game over", run on the game's schema: the real
 * `@convex-dev/auth` tables, the game's `users` and `highscores`, this
 * project's tables spread in. The settings are read from the README's own
 * `npx convex env set` lines; the calls the game had already scheduled land on
 * the thin entry points; then the game's frontend is played: its pages' queries
 * (`getStory({})`, `getAllStories({})`, `getStoryBySlug`, `getStory({ storyId })`)
 * and its case-list links, built with the frontend's slugify (re-implemented
 * below from app-next/lib/slug.ts's documented steps).
 */
import { readFileSync } from "node:fs";
import { authTables } from "@convex-dev/auth/server";
import { cronJobs, defineSchema, defineTable, makeFunctionReference } from "convex/server";
import { v } from "convex/values";
import { convexTest } from "convex-test";
import { afterEach, beforeEach, expect, test } from "vitest";
import { api, internal } from "../convex/_generated/api";
import crons from "../convex/crons";
import { registerStoryRunCrons } from "../convex/lib/crons";
import { portraitTables } from "../convex/tables";
import { decodePngSize } from "../scripts/fakes/png";
import { ANTHROPIC_KEY, caseFile, modules, RECRAFT_KEY, settle, startStack, TINIFY_KEY, type Backend, type Stack } from "./harness";
import { expectInvariants } from "./invariants";

// The game's schema (app-next/convex/schema.ts) after step 3: its own `stories` replaced by this project's.
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

/** The frontend's slugify: lower-case; drop all but a-z, 0-9, whitespace and "-"; whitespace runs to "-"; dash runs to one; trim dashes. */
function frontendSlugify(title: string): string {
  let out = "";
  for (const char of title.toLowerCase()) if (/[a-z0-9\s-]/.test(char)) out += char;
  out = out.split(/\s+/).join("-");
  while (out.includes("--")) out = out.replace("--", "-");
  if (out.startsWith("-")) out = out.slice(1);
  if (out.endsWith("-")) out = out.slice(0, -1);
  return out;
}

/** The README's migration section, and its shell lines. */
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const migration = README.slice(
  README.indexOf("## Moving the game over"),
  README.indexOf("\n## ", README.indexOf("## Moving the game over") + 1),
);
const envLines = [...migration.matchAll(/^\s*npx convex env set (\w+) (\S+)/gm)].map(([, name, value]) => ({ name, value }));
const runLines = [...migration.matchAll(/^\s*npx convex run ([\w/]+:\w+)(?: '(.*)')?$/gm)].map(([, name, args]) => ({
  name,
  args: args ? JSON.parse(args) : {},
}));

const GAME_STYLE_ID = "1f9a9d70-2d71-4b85-9106-646bbddf1fd0";

let stack: Stack;
const newGameBackend = () => convexTest(gameSchema, modules);
let game: ReturnType<typeof newGameBackend>;
/** The harness's helpers take the project's backend type; they only use tables both schemas have. */
const asBackend = () => game as unknown as Backend;
beforeEach(async () => {
  stack = await startStack({ env: { ANTHROPIC_API_KEY: undefined, TINIFY_API_KEY: undefined } });
  game = newGameBackend();
});
afterEach(async () => {
  try {
    await expectInvariants(asBackend());
  } finally {
    await stack.close();
  }
});

test("the README's migration covers the game's settings, and its commands are the ones run here", () => {
  expect(envLines.map((line) => line.name).sort()).toEqual(
    ["ADMIN_SUBJECTS", "CLAUDE_API_KEY", "RECRAFT_API_KEY", "RECRAFT_MODEL", "RECRAFT_SIZE", "RECRAFT_STYLE_ID", "TINIFY_API_KEY"].sort(),
  );
  expect(envLines.filter((line) => line.name!.startsWith("RECRAFT_") && !line.value!.startsWith("<"))).toEqual([
    { name: "RECRAFT_MODEL", value: "recraftv2" },
    { name: "RECRAFT_STYLE_ID", value: GAME_STYLE_ID },
    { name: "RECRAFT_SIZE", value: "1024x1536" },
  ]);
  expect(runLines).toEqual([{ name: "portraits:backfill", args: {} }]);
});

test("the game, moved over: its scheduled calls hand over, its frontend's queries and links work, its look and compression carry over", async () => {
  // Before the deploy: a player, an admin, the game's stories (one it was still painting) and a highscore.
  const before = await game.run(async (ctx) => {
    const player = await ctx.db.insert("users", { username: "nightnurse", email: "nurse@asylum.test" });
    const admin = await ctx.db.insert("users", { username: "warden", email: "warden@asylum.test" });
    const { slug: _slug, ...file } = caseFile();
    const older = await ctx.db.insert("stories", {
      ...file,
      title: "The Brother's Ward",
      slug: frontendSlugify("The Brother's Ward"),
      createdAt: Date.UTC(2025, 5, 1),
    });
    const painting = await ctx.db.insert("stories", {
      ...file,
      title: "Room 9: The Return",
      slug: frontendSlugify("Room 9: The Return"),
      createdAt: Date.UTC(2025, 5, 2),
    });
    await ctx.db.insert("highscores", {
      storyId: older,
      userId: player,
      wordPerMinute: 61,
      accuracy: 0.97,
      timeTaken: 312,
      score: 5917,
      createdAt: Date.now(),
    });
    await ctx.db.insert("authSessions", { userId: player, expirationTime: Date.now() + 60_000 });
    return { player, admin, older, painting };
  });

  // Step 6, as the README writes it: placeholders are this stack's fakes and the admin's id.
  const placeholders: Record<string, string> = {
    CLAUDE_API_KEY: ANTHROPIC_KEY,
    RECRAFT_API_KEY: RECRAFT_KEY,
    TINIFY_API_KEY: TINIFY_KEY,
    ADMIN_SUBJECTS: before.admin,
  };
  stack.setEnv(Object.fromEntries(envLines.map(({ name, value }) => [name, value!.startsWith("<") ? placeholders[name!] : value])));
  stack.setEnv({ CONVEX_SITE_URL: "https://game.convex.site" }); // Convex sets it on a deployment
  expect(process.env.ANTHROPIC_API_KEY).toBeUndefined(); // the game's CLAUDE_API_KEY alone

  // Step 8: what the game had scheduled before the deploy. The first answer repeats an old title.
  stack.anthropic.setBehavior((index) => ({
    kind: "caseFile",
    caseFile: caseFile({ title: index === 0 ? "The Brothers Ward" : "The Bell Tower", patientNumber: "#928" }),
  }));
  const runId = await game.mutation(makeFunctionReference<"mutation">("stories:generateStory"), { retryCount: 1 });
  expect(
    await game.mutation(makeFunctionReference<"mutation">("stories:generatePatientPortrait"), {
      storyId: before.painting,
      imageGenerationPrompt: "ignored",
    }),
  ).toBe("queued");
  await settle(asBackend());
  const run = await game.run(async (ctx) => (await ctx.db.get(runId as never)) as { status: string; storyId: string } | null);
  expect(run).toMatchObject({ status: "inserted" });
  // The repeated title went back to Claude: "The Brothers Ward" would have linked to the old case file.
  expect(JSON.stringify(stack.anthropic.requests[1]!.body)).toContain("pick another title");

  // Step 7: the backfill, exactly as the README runs it.
  for (const { name, args } of runLines) await game.mutation(makeFunctionReference<"mutation">(name!), args);
  await settle(asBackend());

  // The game's look and compression: recraftv2, its style, 1024x1536, no style; TinyPNG's image stored.
  expect(stack.recraft.requests).toHaveLength(3);
  for (const request of stack.recraft.requests) {
    expect(request.validationErrors).toEqual([]);
    expect(request.body).toMatchObject({ model: "recraftv2", style_id: GAME_STYLE_ID, size: "1024x1536" });
    expect(request.body).not.toHaveProperty("style");
  }
  expect(stack.tinify.compressionCount).toBe(3);

  // The home page's "play today's story": getStory with no id is the newest.
  const today = (await game.query(api.stories.getStory, {}))!;
  expect(today).toMatchObject({ _id: run!.storyId, title: "The Bell Tower", patientNumber: "#928" });
  // The case list: every story, newest first, each with an image URL; every link resolves on the case page.
  const list = await game.query(api.stories.getAllStories, {});
  expect(list.map((story) => story._id)).toEqual([run!.storyId, before.painting, before.older]);
  for (const story of list) {
    expect(story.imageUrl).toMatch(/^https?:\/\//);
    const page = await game.query(api.stories.getStoryBySlug, { slug: frontendSlugify(story.title) });
    expect(page?._id, `/cases/${frontendSlugify(story.title)}`).toBe(story._id);
    // The case page's "play" link: /play?caseid=<_id>.
    expect((await game.query(api.stories.getStory, { storyId: story._id }))?.imageUrl).toBe(story.imageUrl);
    const png = new Uint8Array(await game.run(async (ctx) => (await ctx.storage.get(story.storageId!))!.arrayBuffer()));
    expect(decodePngSize(png)).toEqual({ width: 64, height: 64 }); // TinyPNG's output (fit to 1024: the fake paints 64x64)
  }
  expect(stack.tinify.requests.filter((r) => r.path === "/shrink").every((r) => r.status === 201)).toBe(true);

  // The admin of ADMIN_SUBJECTS (a Convex Auth subject is userId|sessionId) sees the console's counts.
  const counts = await game
    .withIdentity({ subject: `${before.admin}|session1`, issuer: "https://game.convex.site" })
    .query(api.admin.statusCounts, {});
  expect(counts).toMatchObject({ stored: 3 });

  // The game's own tables are untouched.
  const [users, highscores, sessions] = await game.run(async (ctx) => [
    await ctx.db.query("users").collect(),
    await ctx.db.query("highscores").collect(),
    await ctx.db.query("authSessions").collect(),
  ]);
  expect(users).toHaveLength(2);
  expect(highscores).toMatchObject([{ storyId: before.older, userId: before.player, score: 5917 }]);
  expect(sessions).toHaveLength(1);
});

test("one daily story, never two: this project's crons have one, and the game's old entry cannot sit beside it", () => {
  const daily = Object.entries(crons.crons).filter(([, job]) => job.schedule.type === "daily");
  expect(daily).toHaveLength(1);
  expect(daily[0]).toMatchObject(["generate daily story", { name: "storyRuns:dailyStory", schedule: { hourUTC: 0, minuteUTC: 0 } }]);
  expect(Object.keys(crons.crons).sort()).toEqual([
    "generate daily story",
    "snapshot the portrait queue",
    "sweep stalled portrait jobs",
    "sweep stalled story runs",
  ]);

  const kept = cronJobs();
  kept.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.stories.generateStory, {});
  expect(() => registerStoryRunCrons(kept)).toThrow(/registered twice/);
});

test("a scheduled portrait of the game's does nothing for a story that has a portrait or a job, or that is gone", async () => {
  const storyId = await game.mutation(internal.stories.insertStory, caseFile());
  const generatePatientPortrait = makeFunctionReference<"mutation">("stories:generatePatientPortrait");
  expect(await game.mutation(generatePatientPortrait, { storyId, imageGenerationPrompt: "x" })).toBe("has_job");
  await settle(asBackend());
  expect(await game.mutation(generatePatientPortrait, { storyId })).toBe("has_portrait");
  await game.mutation(internal.stories.deleteStory, { storyId });
  expect(await game.mutation(generatePatientPortrait, { storyId })).toBe("story_missing");
});
