/**
 * Story runs through the real Anthropic SDK against an Anthropic-compatible
 * server on 127.0.0.1: structured output, retries across attempts, refusals,
 * typeable chapters and the repair turn, image prompts that never cost the
 * story, variety, recovery of a dead action; and insertStory's insert.
 */
import { ConvexError } from "convex/values";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { DEFAULT_STORY_MODEL, MAX_NONSTREAMING_TOKENS } from "../convex/lib/config";
import { CASE_LIST_LIMIT } from "../convex/stories";
import { isTransient as isTransientStoryError, move, startRun } from "../convex/lib/storyRunMachine";
import { retryTransition } from "../convex/lib/transitionRetry";
import type { AnthropicBehavior } from "../scripts/fakes/anthropicServer";
import {
  ANTHROPIC_KEY,
  captureLogs,
  caseFile,
  jobOf,
  newBackend,
  runEventsOf,
  runOf,
  runPathOf,
  runStory,
  settle,
  startStack,
  type Stack,
} from "./harness";
import { expectInvariants, snapshot } from "./invariants";

let stack: Stack;
let lines: string[];
beforeEach(async () => {
  stack = await startStack();
  lines = captureLogs();
});
afterEach(async () => {
  try {
    await settle(stack.t);
    await expectInvariants(stack.t);
    expect(lines.join("\n")).not.toContain(ANTHROPIC_KEY);
  } finally {
    await stack.close();
    vi.restoreAllMocks();
  }
});

type Body = {
  model: string;
  max_tokens: number;
  messages: { role: string; content: string }[];
  output_config?: unknown;
  tool_choice?: unknown;
};
const bodies = () => stack.anthropic.requests.map((r) => r.body as Body);
const lastUserTurn = (body: Body) => body.messages[body.messages.length - 1]!.content;

async function expectNoStory() {
  const { stories, jobs } = await snapshot(stack.t);
  expect({ stories: stories.length, jobs: jobs.length }).toEqual({ stories: 0, jobs: 0 });
}

describe("a story run", () => {
  test("asks the default model for structured output and inserts the case file with its portrait job", async () => {
    const run = await runStory(stack.t, { hint: "a lighthouse keeper" });
    expect(run).toMatchObject({ status: "inserted", attempt: 1, hint: "a lighthouse keeper" });
    expect(await runPathOf(stack.t, run._id)).toBe("pending>writing>inserted");

    const [body] = bodies();
    expect(body!.model).toBe(DEFAULT_STORY_MODEL);
    expect(body!.tool_choice).toBeUndefined(); // current models answer a forced tool_choice with a 400
    expect(body!.output_config).toMatchObject({ format: { type: "json_schema", schema: { type: "object", additionalProperties: false } } });
    expect(lastUserTurn(body!)).toContain("a lighthouse keeper");
    expect(lastUserTurn(body!)).toContain("exactly 8 chapters: 4 easy, then 2 medium, then 2 hard");
    // A server-side client: the SDK's browser-access opt-in is never sent.
    expect(stack.anthropic.requests[0]!.headers).not.toHaveProperty("anthropic-dangerous-direct-browser-access");

    const served = stack.anthropic.servedCaseFiles[0];
    const story = await stack.t.run((ctx) => ctx.db.get(run.storyId!));
    expect(story).toMatchObject({ title: served!.title, slug: served!.slug, patientName: served!.patientName, chapters: served!.chapters });
    const [, , inserted] = await runEventsOf(stack.t, run._id);
    expect(inserted!.details).toMatchObject({ model: DEFAULT_STORY_MODEL, stopReason: "end_turn", inputTokens: expect.any(Number) });
    await settle(stack.t);
    expect((await jobOf(stack.t, run.storyId!)).status).toBe("stored");
  });

  test("tells Claude the recent titles and patient names, newest first", async () => {
    await runStory(stack.t);
    await runStory(stack.t);
    await runStory(stack.t);
    const [first, second, third] = stack.anthropic.servedCaseFiles;
    const request = lastUserTurn(bodies()[2]!);
    expect(request).toContain(`"${second!.title}" (patient ${second!.patientName}, ${second!.patientNumber})`);
    expect(request.indexOf(second!.title)).toBeLessThan(request.indexOf(first!.title));
    expect(request).not.toContain(third!.title);
    expect(lastUserTurn(bodies()[0]!)).not.toContain("Earlier case files");
  });

  test("a 529 retries as a new attempt after the backoff, then succeeds", async () => {
    // The SDK retries twice itself (three requests); the run's second attempt succeeds.
    stack.anthropic.setBehavior((index) => (index < 3 ? { kind: "overloaded" } : undefined));
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "inserted", attempt: 2 });
    expect(await runPathOf(stack.t, run._id)).toBe("pending>writing>failed>pending>writing>inserted");
    const events = await runEventsOf(stack.t, run._id);
    expect(events[2]).toMatchObject({ attempt: 1, to: "failed", error: { stage: "request", code: "overloaded", httpStatus: 529 } });
    expect(events[3]!.details!.retryAt! - events[2]!.at).toBeGreaterThanOrEqual(20); // STORY_RETRY_DELAY_MS in the harness
    expect(events[4]!.at).toBeGreaterThanOrEqual(events[3]!.details!.retryAt!);
    expect(stack.anthropic.requests).toHaveLength(4);
  });

  test("a 429's Retry-After sets the next attempt, however short STORY_RETRY_DELAY_MS; STORY_SDK_MAX_RETRIES bounds the SDK's own tries", async () => {
    stack.setEnv({ STORY_SDK_MAX_RETRIES: "0" });
    stack.anthropic.setBehavior((index) =>
      index === 0
        ? {
            kind: "status",
            status: 429,
            headers: { "retry-after-ms": "600" },
            body: { type: "error", error: { type: "rate_limit_error", message: "slow down" } },
          }
        : undefined,
    );
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "inserted", attempt: 2 });
    const events = await runEventsOf(stack.t, run._id);
    expect(events[2]).toMatchObject({ to: "failed", error: { code: "rate_limited", retryAfterMs: 600 } });
    expect(events[3]!.details!.retryAt! - events[2]!.at).toBeGreaterThanOrEqual(600);
    expect(events[4]!.at).toBeGreaterThanOrEqual(events[3]!.details!.retryAt!);
    expect(stack.anthropic.requests).toHaveLength(2); // no SDK retry: the run's own backoff waited
  });

  test("transient failures stop after STORY_MAX_ATTEMPTS with the last code", async () => {
    stack.setEnv({ STORY_MAX_ATTEMPTS: "2" });
    stack.anthropic.setBehavior({ kind: "status", status: 500, body: { type: "error", error: { type: "api_error", message: "boom" } } });
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "failed", attempt: 2, error: { code: "http_error", httpStatus: 500 } });
    expect(stack.anthropic.requests).toHaveLength(6);
    await expectNoStory();
  });

  const permanent: [string, AnthropicBehavior, string, RegExp][] = [
    ["a refusal", { kind: "refusal" }, "refusal", /Claude refused/],
    ["a max_tokens cut-off", { kind: "maxTokens" }, "max_tokens", /STORY_MAX_TOKENS/],
    [
      "a 401",
      { kind: "status", status: 401, body: { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } } },
      "unauthorized",
      /HTTP 401/,
    ],
    [
      "a 400 (an http_error that is no one's transient fault)",
      { kind: "status", status: 400, body: { type: "error", error: { type: "invalid_request_error", message: "bad" } } },
      "http_error",
      /HTTP 400/,
    ],
  ];
  test.each(permanent)("%s fails the run at once with a stable code and inserts nothing", async (_name, behavior, code, message) => {
    stack.anthropic.setBehavior(behavior);
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "failed", attempt: 1, error: { code } });
    expect(run.error!.message).toMatch(message);
    expect(stack.anthropic.requests).toHaveLength(1);
    expect(lines.some((line) => line.includes('"story.transition"') && line.includes(`"code":"${code}"`))).toBe(true);
    await expectNoStory();
  });

  test("a missing ANTHROPIC_API_KEY fails as missing_api_key before any request", async () => {
    stack.setEnv({ ANTHROPIC_API_KEY: undefined });
    expect(await runStory(stack.t)).toMatchObject({ status: "failed", error: { stage: "config", code: "missing_api_key" } });
    expect(stack.anthropic.requests).toHaveLength(0);
    await expectNoStory();
  });

  test("an API key echoed back by the provider is redacted from the run, its events and the logs", async () => {
    stack.anthropic.setBehavior({ kind: "echoKey" });
    const run = await runStory(stack.t);
    expect(run.status).toBe("failed");
    const stored = JSON.stringify({ run, events: await runEventsOf(stack.t, run._id) });
    expect(stored).not.toContain(ANTHROPIC_KEY);
    expect(stored).toContain("[redacted]");
  });
});

describe("typeable chapters", () => {
  const withChapter = (i: number, text: string) =>
    caseFile({ chapters: caseFile().chapters.map((c, j) => (j === i ? { ...c, text } : c)) });

  test("curly quotes, dashes, ellipses, non-breaking spaces and line breaks are normalised without a repair turn", async () => {
    stack.anthropic.setBehavior({
      kind: "caseFile",
      caseFile: withChapter(0, "\u201CWait\u201D \u2014 it\u2019s late\u2026\u00A0the\nlights\u2013hum."),
    });
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    const story = await stack.t.run((ctx) => ctx.db.get(run.storyId!));
    expect(story!.chapters[0]!.text).toBe('"Wait" - it\'s late... the lights-hum.');
    expect(stack.anthropic.requests).toHaveLength(1);
    expect((await runEventsOf(stack.t, run._id)).at(-1)!.details).toMatchObject({ normalized: 1 });
  });

  test("an untypeable chapter goes back to Claude once, listing the problems, and the repaired one is inserted", async () => {
    stack.anthropic.setBehavior((index) =>
      index === 0
        ? { kind: "caseFile", caseFile: withChapter(5, "The caf\u00E9 was 4\u00B0 colder.") }
        : { kind: "caseFile", caseFile: caseFile() },
    );
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "inserted", attempt: 1 });
    expect(await runPathOf(stack.t, run._id)).toBe("pending>writing>repairing>inserted");
    const repair = bodies()[1];
    expect(repair!.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(lastUserTurn(repair!)).toMatch(/chapter 6 has characters a US keyboard cannot type: "é" \(U\+00E9\), "°" \(U\+00B0\)/);
    const [, , repairing] = await runEventsOf(stack.t, run._id);
    expect(repairing!.details!.problems).toEqual([expect.stringContaining("chapter 6")]);
    const story = await stack.t.run((ctx) => ctx.db.get(run.storyId!));
    expect(story!.chapters.every((c) => /^[\x20-\x7E]+$/.test(c.text))).toBe(true);
  });

  test("a chapter still untypeable after the repair turn fails the run as untypeable_chapter", async () => {
    stack.anthropic.setBehavior({ kind: "caseFile", caseFile: withChapter(7, "She wrote \u2603 on the glass.") });
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "failed", attempt: 1, error: { stage: "validation", code: "untypeable_chapter" } });
    expect(run.error!.message).toMatch(/chapter 8 has characters .*U\+2603/);
    expect(stack.anthropic.requests).toHaveLength(2);
    await expectNoStory();
  });

  test("a case file off the chapter plan is repaired or failed as plan_mismatch", async () => {
    const allEasy = caseFile({ chapters: caseFile().chapters.map((c) => ({ ...c, difficulty: "easy" })) });
    stack.anthropic.setBehavior({ kind: "caseFile", caseFile: allEasy });
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "failed", error: { code: "plan_mismatch" } });
    expect(lastUserTurn(bodies()[1]!)).toContain("chapter 5 is easy; the plan wants medium");
    await expectNoStory();
  });

  test("an answer that is not JSON is asked for again in the repair turn", async () => {
    stack.anthropic.setBehavior((index) => (index === 0 ? { kind: "text", text: "Here is your case file: ..." } : undefined));
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    expect(lastUserTurn(bodies()[1]!)).toContain("the answer is not valid JSON");
  });

  test("STORY_CHAPTER_PLAN sets the chapters in order", async () => {
    stack.setEnv({ STORY_CHAPTER_PLAN: "easy:2,medium:1,hard:1" });
    const plan = ["easy", "easy", "medium", "hard"] as const;
    stack.anthropic.setBehavior({
      kind: "caseFile",
      caseFile: caseFile({ chapters: plan.map((difficulty) => ({ text: "The hall is cold.", difficulty })) }),
    });
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    expect(lastUserTurn(bodies()[0]!)).toContain("exactly 4 chapters: 2 easy, then 1 medium, then 1 hard");
  });
});

describe("nothing lost for a picture", () => {
  test("an over-long image prompt is sent back once; when still too long the story is kept and its job fails prompt_too_long", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv3" }); // 1000 bytes; the V4 models take 10,000 characters
    stack.anthropic.setBehavior({
      kind: "caseFile",
      caseFile: caseFile({ imageGenerationPrompt: "a gaunt face in flash light, ".repeat(50) }),
    });
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    expect(lastUserTurn(bodies()[1]!)).toMatch(/imageGenerationPrompt is \d+ UTF-8 bytes; shorten it/);
    await settle(stack.t);
    expect((await jobOf(stack.t, run.storyId!)).error).toMatchObject({ step: "validate", code: "prompt_too_long" });
    expect(stack.recraft.requests).toHaveLength(0);
  });

  test("a repair turn that fails keeps a story whose only problem was its image prompt", async () => {
    stack.anthropic.setBehavior((index) =>
      index === 0 ? { kind: "caseFile", caseFile: caseFile({ imageGenerationPrompt: "" }) } : { kind: "refusal" },
    );
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    await settle(stack.t);
    expect((await jobOf(stack.t, run.storyId!)).error).toMatchObject({ code: "empty_prompt" });
  });

  test.each([
    ["blank", "empty_prompt", "   ", undefined],
    ["over 1000 bytes for recraftv3", "prompt_too_long", "\u00E9".repeat(501), "recraftv3"],
    ["over 10,000 characters for the default model", "prompt_too_long", "a".repeat(10_001), undefined],
  ])("insertStory keeps a story whose prompt is %s; its job fails %s without calling Recraft", async (_name, code, prompt, model) => {
    stack.setEnv({ RECRAFT_MODEL: model });
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile({ imageGenerationPrompt: prompt }));
    await settle(stack.t);
    expect(await stack.t.run((ctx) => ctx.db.get(storyId))).not.toBeNull();
    expect((await jobOf(stack.t, storyId)).error).toMatchObject({ step: "validate", code });
    expect(stack.recraft.requests).toHaveLength(0);
  });
});

describe("any sequence of answers", () => {
  const answers: AnthropicBehavior[] = [
    { kind: "overloaded" },
    { kind: "status", status: 503 },
    { kind: "status", status: 429 },
    { kind: "status", status: 400 },
    { kind: "refusal" },
    { kind: "maxTokens" },
    { kind: "text", text: "not json" },
    { kind: "caseFile", caseFile: caseFile({ chapters: [{ text: "caf\u00E9", difficulty: "easy" }] }) },
    { kind: "caseFile", caseFile: caseFile({ imageGenerationPrompt: "" }) },
    { kind: "caseFile", caseFile: caseFile() },
  ];

  test("ends every run inserted with one story, or failed with a code and no story; the invariants hold", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...answers), { minLength: 1, maxLength: 12 }), async (script) => {
        stack.t = newBackend();
        stack.anthropic.reset();
        stack.anthropic.setBehavior((index) => script[index] ?? { kind: "caseFile", caseFile: caseFile() });
        const run = await runStory(stack.t);
        const { stories } = await snapshot(stack.t);
        if (run.status === "inserted") expect(stories.map((story) => story._id)).toEqual([run.storyId]);
        else
          expect({ status: run.status, stories: stories.length, code: typeof run.error?.code }).toEqual({
            status: "failed",
            stories: 0,
            code: "string",
          });
        expect(run.attempt).toBeLessThanOrEqual(3);
        await expectInvariants(stack.t);
      }),
      { numRuns: 25 },
    );
  });
});

describe("recovery", () => {
  test("a run whose action died is failed as stalled by the sweep and retried to the end", async () => {
    // A run that claimed its attempt, then lost its action (as when a backend restarts).
    const runId = await stack.t.run(async (ctx) => {
      const id = await startRun(ctx);
      const run = (await ctx.db.get(id))!;
      await ctx.scheduler.cancel(run.scheduledFunctionId!);
      await move(ctx, run, "writing");
      return id;
    });
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(1);
    await settle(stack.t);
    const run = await runOf(stack.t, runId);
    expect(run).toMatchObject({ status: "inserted", attempt: 2 });
    expect(await runPathOf(stack.t, runId)).toBe("pending>writing>failed>pending>writing>inserted");
    const events = await runEventsOf(stack.t, runId);
    expect(events[2]!.error).toMatchObject({ stage: "recovery", code: "stalled", message: expect.stringContaining("canceled") });
    // The dead attempt's late action is refused.
    expect(
      await stack.t.mutation(internal.storyRuns.markFailed, {
        runId,
        attempt: 1,
        from: "writing",
        error: { stage: "request", code: "timeout", message: "late" },
      }),
    ).toBe(false);
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(0);
  });

  test("a live run is left alone by the sweep", async () => {
    stack.anthropic.setBehavior({ kind: "status", status: 529 });
    stack.setEnv({ STORY_RETRY_DELAY_MS: "60000" });
    const runId = await stack.t.mutation(internal.storyRuns.generateStory, {});
    await settle(stack.t); // the retry is a minute away
    expect(await runOf(stack.t, runId)).toMatchObject({ status: "pending", attempt: 2 });
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(0);
    await stack.t.run(async (ctx) => {
      const run = (await ctx.db.get(runId))!;
      await ctx.scheduler.cancel(run.scheduledFunctionId!);
      await move(ctx, run, "failed", { error: { stage: "request", code: "overloaded", message: "cancelled by the test" } });
    });
  });
});

describe("recovery of runs by their action's state", () => {
  test("a pending run whose action died before claiming is swept too, and retried", async () => {
    const runId = await stack.t.run(async (ctx) => {
      const id = await startRun(ctx);
      await ctx.scheduler.cancel((await ctx.db.get(id))!.scheduledFunctionId!);
      return id;
    });
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(1);
    await settle(stack.t);
    expect(await runOf(stack.t, runId)).toMatchObject({ status: "inserted", attempt: 2 });
    expect(await runPathOf(stack.t, runId)).toBe("pending>failed>pending>writing>inserted");
  });

  test("a run whose action is alive is not swept after the old 15 minutes, only past what its SDK calls can take", async () => {
    const { runId, scheduledFunctionId } = await stack.t.run(async (ctx) => {
      const id = await startRun(ctx);
      const run = (await ctx.db.get(id))!;
      await ctx.scheduler.cancel(run.scheduledFunctionId!);
      // An action still running (pending here, so the test's scheduler never runs it).
      const alive = await ctx.scheduler.runAfter(3_600_000, internal.storyRuns.writeStory, { runId: id });
      await ctx.db.patch(id, { scheduledFunctionId: alive });
      await move(ctx, (await ctx.db.get(id))!, "writing");
      await ctx.db.patch(id, { updatedAt: Date.now() - 20 * 60_000 });
      return { runId: id, scheduledFunctionId: alive };
    });
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(0);
    // Four minutes a call, three tries, two calls, and the margin: about half an hour.
    await stack.t.run((ctx) => ctx.db.patch(runId, { updatedAt: Date.now() - 31 * 60_000 }));
    stack.setEnv({ STORY_MAX_ATTEMPTS: "1" });
    expect(await stack.t.mutation(internal.storyRuns.sweep, {})).toBe(1);
    expect(await runOf(stack.t, runId)).toMatchObject({
      status: "failed",
      error: { code: "stalled", message: expect.stringContaining("SDK calls") },
    });
    await stack.t.run((ctx) => ctx.scheduler.cancel(scheduledFunctionId));
  });
});

describe("finish", () => {
  test("refuses a stale attempt: a late attempt 1 cannot finish attempt 2, and no story is inserted", async () => {
    const runId = await stack.t.run(async (ctx) => {
      const id = await startRun(ctx);
      await ctx.scheduler.cancel((await ctx.db.get(id))!.scheduledFunctionId!);
      let run = await move(ctx, (await ctx.db.get(id))!, "writing");
      run = await move(ctx, run, "failed", { error: { stage: "request", code: "timeout", message: "first attempt timed out" } });
      run = await move(ctx, run, "pending");
      await move(ctx, run, "writing");
      return id;
    });
    expect(await runOf(stack.t, runId)).toMatchObject({ status: "writing", attempt: 2 });
    const { slug: _derived, ...story } = caseFile(); // Claude's case file: the slug is derived at the insert
    expect(await stack.t.mutation(internal.storyRuns.finish, { runId, attempt: 1, from: "writing", story })).toBeNull();
    await expectNoStory();
    expect(await stack.t.mutation(internal.storyRuns.finish, { runId, attempt: 2, from: "writing", story })).not.toBeNull();
  });

  test("a finish that throws is tried again (the story is not lost for a transient error); a refusal is not", async () => {
    let calls = 0;
    const flaky = await retryTransition("test.retry", {}, async () => {
      if (++calls === 1) throw new Error("write conflict");
      return "inserted";
    });
    expect({ flaky, calls }).toEqual({ flaky: "inserted", calls: 2 });
    let refusals = 0;
    await expect(
      retryTransition("test.retry", {}, async () => {
        refusals++;
        throw new ConvexError("the game cannot play this case file");
      }),
    ).rejects.toThrow(ConvexError);
    expect(refusals).toBe(1);
    // And when an insert keeps failing past those tries, the run retries it as a new attempt.
    expect(isTransientStoryError({ stage: "insert", code: "insert_failed", message: "x" })).toBe(true);
  });
});

describe("settings", () => {
  test("STORY_MAX_TOKENS above what the SDK sends without streaming is clamped, with a warning naming it", async () => {
    stack.setEnv({ STORY_MAX_TOKENS: "64000" });
    expect((await runStory(stack.t)).status).toBe("inserted");
    expect(bodies()[0]!.max_tokens).toBe(MAX_NONSTREAMING_TOKENS);
    expect(lines.some((line) => line.includes("STORY_MAX_TOKENS=64000") && line.includes(String(MAX_NONSTREAMING_TOKENS)))).toBe(true);
  });

  test("a deprecated STORY_MODEL still runs, with a warning naming the variable", async () => {
    stack.setEnv({ STORY_MODEL: "claude-sonnet-4-5" });
    expect((await runStory(stack.t)).status).toBe("inserted");
    expect(lines.some((line) => line.includes("story.deprecated_model") && line.includes("STORY_MODEL=claude-sonnet-4-5"))).toBe(true);
  });
});

describe("insertStory", () => {
  test("refuses only what the game cannot play: nothing is inserted or scheduled", async () => {
    await expect(
      stack.t.mutation(internal.stories.insertStory, caseFile({ chapters: [{ text: "\u2603 snow", difficulty: "easy" }] })),
    ).rejects.toThrow(/chapter 1 has characters a US keyboard cannot type/);
    await expect(stack.t.mutation(internal.stories.insertStory, caseFile({ chapters: [] }))).rejects.toThrow(/no chapters/);
    await expectNoStory();
    expect(await stack.t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect())).toEqual([]);
  });

  test("accepts the game's existing shapes: ten chapters, another mix; the slug is the game's slugify(title)", async () => {
    const ten = ["easy", "easy", "easy", "easy", "medium", "medium", "medium", "medium", "hard", "hard"] as const;
    const { slug: _slug, ...file } = caseFile({
      title: "The Brother's  Keeper -- Part II!",
      chapters: ten.map((difficulty) => ({ text: "A \u201Cquiet\u201D ward.", difficulty })),
    });
    const storyId = await stack.t.mutation(internal.stories.insertStory, file);
    const story = (await stack.t.run((ctx) => ctx.db.get(storyId)))!;
    expect(story.chapters).toHaveLength(10);
    expect(story.chapters[0]!.text).toBe('A "quiet" ward.');
    expect(story.slug).toBe("the-brothers-keeper-part-ii");
  });

  test.each([
    ["  Ward 7:  The   Return  ", "ward-7-the-return"],
    ["Caf\u00E9 Noir", "caf-noir"],
    ["--Room_9--", "room9"],
    ["Tomorrow's Diary", "tomorrows-diary"],
  ])("the title %j is stored with the slug %j, the game's link to it", async (title, slug) => {
    const storyId = await stack.t.mutation(internal.stories.insertStory, { ...caseFile({ title }), slug: undefined });
    expect((await stack.t.query(api.stories.getStoryBySlug, { slug }))?._id).toBe(storyId);
  });

  test("a title whose slug is taken is refused with a clear error; nothing is inserted or scheduled", async () => {
    await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Quiet Ward" }));
    const before = await snapshot(stack.t);
    const scheduled = async () => (await stack.t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect())).length;
    const scheduledBefore = await scheduled();
    await expect(stack.t.mutation(internal.stories.insertStory, caseFile({ title: "the QUIET ward!" }))).rejects.toThrow(
      /slug "the-quiet-ward", which case file "The Quiet Ward" .* already has; pick another title/,
    );
    const after = await snapshot(stack.t);
    expect({ stories: after.stories.length, jobs: after.jobs.length }).toEqual({
      stories: before.stories.length,
      jobs: before.jobs.length,
    });
    expect(await scheduled()).toBe(scheduledBefore);
  });

  test("a title with no letter or digit is refused: it would have no link", async () => {
    await expect(stack.t.mutation(internal.stories.insertStory, caseFile({ title: "?!? \u2014 ???" }))).rejects.toThrow(
      /no letter or digit the game's slug keeps/,
    );
    await expectNoStory();
  });

  test("a slug other than the game's slug of the title is refused", async () => {
    await expect(stack.t.mutation(internal.stories.insertStory, { ...caseFile(), slug: "quiet-ward-2" })).rejects.toThrow(
      /slug "quiet-ward-2" is not the game's slug of the title "The Quiet Ward" \("the-quiet-ward"\)/,
    );
    await expectNoStory();
  });

  test("getStory({}), getAllStories({}) and getStoryBySlug return the game's shape, imageUrl null until the portrait is stored", async () => {
    expect(await stack.t.query(api.stories.getStory, {})).toBeNull();
    expect(await stack.t.query(api.stories.getAllStories, {})).toEqual([]);
    const older = await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Older Ward" }));
    await stack.t.run((ctx) => ctx.db.patch(older, { createdAt: Date.now() - 86_400_000 }));
    const newer = await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Newer Ward" }));
    expect(await stack.t.query(api.stories.getStory, { storyId: newer })).toMatchObject({ _id: newer, imageUrl: null });
    await settle(stack.t);
    const latest = await stack.t.query(api.stories.getStory, {});
    expect(latest).toMatchObject({ _id: newer, imageUrl: expect.stringMatching(/^https?:\/\//) });
    expect((await stack.t.query(api.stories.getLatestStory, {}))?._id).toBe(newer);
    const all = await stack.t.query(api.stories.getAllStories, {});
    expect(all.map((story) => story._id)).toEqual([newer, older]);
    for (const story of all) expect(story.imageUrl).toMatch(/^https?:\/\//);
    expect((await stack.t.query(api.stories.getStoryBySlug, { slug: "the-older-ward" }))?._id).toBe(older);
    expect(await stack.t.query(api.stories.getStoryBySlug, { slug: "the-oldest-ward" })).toBeNull();
  });

  test(`getAllStories returns at most the newest ${CASE_LIST_LIMIT}`, async () => {
    await stack.t.run(async (ctx) => {
      const { slug: _slug, ...file } = caseFile();
      for (let i = 0; i < CASE_LIST_LIMIT + 3; i++)
        await ctx.db.insert("stories", { ...file, title: `Ward ${i}`, slug: `ward-${i}`, createdAt: i });
    });
    const all = await stack.t.query(api.stories.getAllStories, {});
    expect(all).toHaveLength(CASE_LIST_LIMIT);
    expect([all[0]!.title, all[CASE_LIST_LIMIT - 1]!.title]).toEqual([`Ward ${CASE_LIST_LIMIT + 2}`, "Ward 3"]);
    // Stories written around the pipeline have no job; remove them before the invariants are checked.
    await stack.t.run(async (ctx) => {
      for (const story of await ctx.db.query("stories").collect()) await ctx.db.delete(story._id);
    });
  });
});

describe("titles and links", () => {
  test("a title whose slug is taken goes back to Claude in the repair turn, and the new title is inserted", async () => {
    await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Quiet Ward" }));
    stack.anthropic.setBehavior((index) => ({
      kind: "caseFile",
      caseFile: caseFile({ title: index === 0 ? "The Quiet  Ward." : "The Loud Ward" }),
    }));
    const run = await runStory(stack.t);
    expect(run.status).toBe("inserted");
    expect(await runPathOf(stack.t, run._id)).toBe("pending>writing>repairing>inserted");
    expect(lastUserTurn(bodies()[1]!)).toMatch(
      /the title "The Quiet {2}Ward\." makes the same link as the earlier case file "The Quiet Ward"; pick another title/,
    );
    expect(await stack.t.query(api.stories.getStoryBySlug, { slug: "the-loud-ward" })).toMatchObject({ _id: run.storyId });
  });

  test("a title still taken after the repair fails the attempt as title_taken, never a suffix", async () => {
    await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Quiet Ward" }));
    stack.anthropic.setBehavior({ kind: "caseFile", caseFile: caseFile({ title: "The Quiet Ward" }) });
    const run = await runStory(stack.t);
    expect(run).toMatchObject({ status: "failed", attempt: 3, error: { code: "title_taken" } });
    const { stories } = await snapshot(stack.t);
    expect(stories.map((story) => story.slug)).toEqual(["the-quiet-ward"]);
  });

  test("a title taken between the check and the insert fails the attempt as title_taken, which retries", async () => {
    stack.setEnv({ STORY_RETRY_DELAY_MS: "60000" });
    const runId = await stack.t.run(async (ctx) => {
      const id = await startRun(ctx);
      const run = (await ctx.db.get(id))!;
      await ctx.scheduler.cancel(run.scheduledFunctionId!);
      await move(ctx, run, "writing");
      return id;
    });
    await stack.t.mutation(internal.stories.insertStory, caseFile({ title: "The Quiet Ward" }));
    const { slug: _slug, ...story } = caseFile({ title: "THE QUIET WARD" });
    expect(await stack.t.mutation(internal.storyRuns.finish, { runId, attempt: 1, from: "writing", story })).toBeNull();
    expect(await runOf(stack.t, runId)).toMatchObject({ status: "pending", attempt: 2 });
    expect((await runEventsOf(stack.t, runId))[2]!.error).toMatchObject({ stage: "insert", code: "title_taken" });
    expect((await snapshot(stack.t)).stories).toHaveLength(1);
    await stack.t.run(async (ctx) => {
      const run = (await ctx.db.get(runId))!;
      await ctx.scheduler.cancel(run.scheduledFunctionId!);
      await move(ctx, run, "writing");
      await move(ctx, (await ctx.db.get(runId))!, "failed", {
        error: { stage: "request", code: "overloaded", message: "stopped by the test" },
      });
    });
  });
});

describe("the Anthropic key", () => {
  test("CLAUDE_API_KEY alone is enough (the game's name for it)", async () => {
    stack.setEnv({ ANTHROPIC_API_KEY: undefined, CLAUDE_API_KEY: ANTHROPIC_KEY });
    expect((await runStory(stack.t)).status).toBe("inserted");
    expect(stack.anthropic.requests).toHaveLength(1);
  });

  test("with neither key the run fails missing_api_key naming both, and nothing is sent", async () => {
    stack.setEnv({ ANTHROPIC_API_KEY: undefined, CLAUDE_API_KEY: undefined });
    const run = await runStory(stack.t);
    expect(run).toMatchObject({
      status: "failed",
      error: { code: "missing_api_key", message: expect.stringMatching(/ANTHROPIC_API_KEY nor CLAUDE_API_KEY/) },
    });
    expect(stack.anthropic.requests).toHaveLength(0);
  });
});
