/**
 * How story generation is set up: a current default model (checked against the
 * installed SDK, not a copy of its lists), the game's public queries bundled
 * without the Anthropic SDK, and the daily cron.
 */
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import crons from "../convex/crons";
import { DEFAULT_STORY_MODEL } from "../convex/lib/config";
import { DEPRECATED_MODELS } from "../convex/lib/storyWriter";
import { settle, startStack, type Stack } from "./harness";
import { expectInvariants } from "./invariants";

const require = createRequire(import.meta.url);
// The SDK's package exports hide internal/, so read its files by path.
const sdkRoot = dirname(require.resolve("@anthropic-ai/sdk")); // its index.js is at the package root
const sdkDeprecated = (require(join(sdkRoot, "internal/data/deprecated-models.js")) as { DEPRECATED_MODELS: Record<string, string> })
  .DEPRECATED_MODELS;

describe("the default model", () => {
  test("is one of the installed SDK's models and not on its deprecated list", async () => {
    const typings = await readFile(join(sdkRoot, "resources/messages/messages.d.ts"), "utf8");
    const models = typings.match(/export type Model = ([^;]+);/)![1];
    expect(models).toContain(`'${DEFAULT_STORY_MODEL}'`);
    expect(Object.keys(sdkDeprecated)).not.toContain(DEFAULT_STORY_MODEL);
  });

  test("the deprecated list the warning uses is the installed SDK's", () => {
    expect(DEPRECATED_MODELS).toEqual(sdkDeprecated);
  });
});

describe("the modules behind the game's public queries", () => {
  test.each(["convex/stories.ts", "convex/admin.ts"])("%s bundles without the Anthropic SDK", async (entry) => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((path) => path.includes("convex/lib/config.ts"))).toBe(true); // the bundle is real
    expect(inputs.filter((path) => path.includes("@anthropic-ai/sdk") || path.includes("storyWriter"))).toEqual([]);
    expect(result.outputFiles[0]!.text).not.toContain("api.anthropic.com");
  });

  test("convex/storyRuns.ts is where the SDK is loaded", async () => {
    const result = await build({
      entryPoints: ["convex/storyRuns.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    expect(Object.keys(result.metafile.inputs).some((path) => path.includes("@anthropic-ai/sdk"))).toBe(true);
  });
});

describe("the daily story", () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack();
    vi.spyOn(console, "log").mockImplementation(() => {});
  });
  afterEach(async () => {
    await settle(stack.t);
    await expectInvariants(stack.t);
    await stack.close();
    vi.restoreAllMocks();
  });

  test("a cron starts a run every day at 00:00 UTC, and the sweep recovers runs every minute", () => {
    const registered = (crons as unknown as { crons: Record<string, { name: string; schedule: Record<string, unknown> }> }).crons;
    expect(registered["generate daily story"]).toMatchObject({
      name: "storyRuns:dailyStory",
      schedule: { type: "daily", hourUTC: 0, minuteUTC: 0 },
    });
    expect(registered["sweep stalled story runs"]).toMatchObject({ name: "storyRuns:sweep", schedule: { type: "interval", minutes: 1 } });
  });

  test("the cron's function starts a run, unless STORY_DAILY=off", async () => {
    const runId = await stack.t.mutation(internal.storyRuns.dailyStory, {});
    expect(runId).not.toBeNull();
    stack.setEnv({ STORY_DAILY: "off" });
    expect(await stack.t.mutation(internal.storyRuns.dailyStory, {})).toBeNull();
    await settle(stack.t);
    const runs = await stack.t.run((ctx) => ctx.db.query("storyRuns").collect());
    expect(runs.map((run) => [run._id, run.status])).toEqual([[runId, "inserted"]]);
  });
});
