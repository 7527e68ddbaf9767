/**
 * generateStory through the real Anthropic SDK against an Anthropic-compatible
 * server on 127.0.0.1, and insertStory's all-or-nothing insert.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { CASE_FILE_TOOL } from "../convex/lib/storyWriter";
import type { AnthropicBehavior } from "../scripts/fakes/anthropicServer";
import { ANTHROPIC_KEY, caseFile, jobOf, settle, startStack, type Stack } from "./harness";
import { expectInvariants, snapshot } from "./invariants";

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
  vi.restoreAllMocks();
});

async function expectNothingInserted() {
  const { stories, jobs, events } = await snapshot(stack.t);
  expect({ stories: stories.length, jobs: jobs.length, events: events.length }).toEqual({ stories: 0, jobs: 0, events: 0 });
  const scheduled = await stack.t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  expect(scheduled).toEqual([]);
}

describe("generateStory", () => {
  test("asks Claude for a case file with a forced tool and inserts it with its portrait job", async () => {
    const result = await stack.t.action(internal.stories.generateStory, { hint: "a lighthouse keeper" });
    expect(result.status).toBe("inserted");
    if (result.status !== "inserted") return;

    const [request] = stack.anthropic.requests;
    const body = request.body as Record<string, any>;
    expect(body.model).toBe("claude-test-model");
    expect(body.tool_choice).toEqual({ type: "tool", name: CASE_FILE_TOOL });
    expect(body.tools[0].input_schema.required).toContain("imageGenerationPrompt");
    expect(JSON.stringify(body.messages)).toContain("a lighthouse keeper");

    const served = stack.anthropic.servedCaseFiles[0];
    const story = await stack.t.run((ctx) => ctx.db.get(result.storyId));
    expect(story).toMatchObject({
      title: served.title,
      slug: served.slug,
      patientName: served.patientName,
      patientNumber: served.patientNumber,
      imageGenerationPrompt: served.imageGenerationPrompt,
      chapters: served.chapters,
    });
    expect((await jobOf(stack.t, result.storyId)).storyId).toBe(result.storyId);
    await settle(stack.t);
    expect((await jobOf(stack.t, result.storyId)).status).toBe("stored");
    await expectInvariants(stack.t);
  });

  const refusedAnswers: [string, AnthropicBehavior, string, RegExp][] = [
    ["a refusal", { kind: "refusal" }, "response", /stopped with refusal/],
    ["a max_tokens cut-off", { kind: "maxTokens" }, "response", /stopped with max_tokens/],
    ["plain text instead of the tool", { kind: "text" }, "response", /stopped with end_turn/],
    ["529 overloaded after the SDK's retries", { kind: "overloaded" }, "request", /HTTP 529/],
    ["a 500 error", { kind: "status", status: 500, body: { type: "error", error: { type: "api_error", message: "boom" } } }, "request", /HTTP 500/],
    ["nine chapters", { kind: "caseFile", caseFile: caseFile({ chapters: caseFile().chapters.slice(0, 9) }) }, "validation", /expected 10 chapters, got 9/],
    [
      "the wrong difficulty mix",
      { kind: "caseFile", caseFile: caseFile({ chapters: caseFile().chapters.map((c) => ({ ...c, difficulty: "easy" })) }) },
      "validation",
      /expected 4 easy chapters, got 10/,
    ],
    ["a prompt over 1000 UTF-8 bytes", { kind: "caseFile", caseFile: caseFile({ imageGenerationPrompt: "é".repeat(501) }) }, "validation", /1002 UTF-8 bytes/],
    ["a missing patient name", { kind: "caseFile", caseFile: caseFile({ patientName: undefined }) }, "validation", /patientName must be a non-empty string/],
    ["a blank prompt", { kind: "caseFile", caseFile: caseFile({ imageGenerationPrompt: "  " }) }, "validation", /imageGenerationPrompt must be a non-empty string/],
    ["a slug that is not kebab-case", { kind: "caseFile", caseFile: caseFile({ slug: "The Quiet Ward" }) }, "validation", /kebab-case/],
  ];

  test.each(refusedAnswers)("%s inserts nothing and says why", async (_name, behavior, stage, message) => {
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line) => void errors.push(String(line)));
    stack.anthropic.setBehavior(behavior);
    const result = await stack.t.action(internal.stories.generateStory, {});
    expect(result).toMatchObject({ status: "failed", stage });
    if (result.status === "failed") expect(result.message).toMatch(message);
    expect(errors.some((line) => line.includes('"story.failed"') && line.includes(stage))).toBe(true);
    await expectNothingInserted();
  });

  test("the SDK retried the overloaded answer before giving up", async () => {
    stack.anthropic.setBehavior({ kind: "overloaded" });
    await stack.t.action(internal.stories.generateStory, {});
    expect(stack.anthropic.requests).toHaveLength(3);
  });

  test("an API key echoed back by the provider is redacted from the result and the logs", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line) => void lines.push(String(line)));
    stack.anthropic.setBehavior({ kind: "echoKey" });
    const result = await stack.t.action(internal.stories.generateStory, {});
    expect(result.status).toBe("failed");
    expect(JSON.stringify(result)).not.toContain(ANTHROPIC_KEY);
    expect(lines.join("\n")).not.toContain(ANTHROPIC_KEY);
    expect(JSON.stringify(result)).toContain("[redacted]");
  });

  test("a missing ANTHROPIC_API_KEY fails before any request", async () => {
    stack.setEnv({ ANTHROPIC_API_KEY: undefined });
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await stack.t.action(internal.stories.generateStory, {})).toMatchObject({ status: "failed", stage: "config" });
    expect(stack.anthropic.requests).toHaveLength(0);
    await expectNothingInserted();
  });
});

describe("insertStory", () => {
  test("an invalid case file is refused whole: no story, no job, nothing scheduled", async () => {
    await expect(stack.t.mutation(internal.stories.insertStory, caseFile({ imageGenerationPrompt: "x".repeat(1001) }))).rejects.toThrow(
      /1001 UTF-8 bytes/,
    );
    await expectNothingInserted();
  });

  test("a reused slug gets a numeric suffix instead of colliding", async () => {
    const first = await stack.t.mutation(internal.stories.insertStory, caseFile());
    const second = await stack.t.mutation(internal.stories.insertStory, caseFile());
    const slugs = await stack.t.run(async (ctx) => [(await ctx.db.get(first))!.slug, (await ctx.db.get(second))!.slug]);
    expect(slugs).toEqual(["the-quiet-ward", "the-quiet-ward-2"]);
    await settle(stack.t);
  });

  test("getStory and getLatestStory return the story with its portrait URL once stored", async () => {
    expect(await stack.t.query(api.stories.getLatestStory, {})).toBeNull();
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
    const before = await stack.t.query(api.stories.getStory, { storyId });
    expect(before).toMatchObject({ _id: storyId, portraitUrl: null });
    await settle(stack.t);
    const latest = await stack.t.query(api.stories.getLatestStory, {});
    expect(latest).toMatchObject({ _id: storyId, portraitUrl: expect.stringMatching(/^https?:\/\//) });
  });
});
