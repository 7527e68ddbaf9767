/**
 * convex/voice.ts is the one file a game replaces to keep its voice. Here a
 * different voice module (tests/voices/gameVoice.ts) stands in for it, with no
 * other file changed: what Claude and Recraft receive changes, the checks take
 * `#NNN` numbers and other lengths, and the stored prompt stays Claude's.
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { caseFile, jobOf, runStory, settle, startStack, type Stack } from "./harness";
import { expectInvariants } from "./invariants";
import gameVoice, { MOOD } from "./voices/gameVoice";

vi.mock("../convex/voice", () => import("./voices/gameVoice"));

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  try {
    await settle(stack.t);
    await expectInvariants(stack.t);
  } finally {
    await stack.close();
  }
});

type Body = { system: string; messages: { role: string; content: string }[] };

test("a replaced voice changes what Claude and Recraft receive; the project's format rules still go with it", async () => {
  // The game's kind of case file: a `#NNN` number, long hard chapters, a short introduction.
  const long = "The ward bell rang at 3:47 AM; nobody answered it, and (as ever) the night log stayed blank! ".repeat(4).trim();
  const file = caseFile({
    title: "The Bell of Ward Nine",
    patientNumber: "#928",
    introduction: "Admitted in winter.",
    chapters: caseFile().chapters.map((chapter) => (chapter.difficulty === "hard" ? { ...chapter, text: long } : chapter)),
  });
  stack.anthropic.setBehavior({ kind: "caseFile", caseFile: file });
  const run = await runStory(stack.t, { hint: "a bell tower" });
  expect(run.status).toBe("inserted");

  const body = stack.anthropic.requests[0]!.body as Body;
  const message = body.messages[0]!.content;
  expect(message).toMatch(/^GAME VOICE\. Write one patient file/);
  expect(message).toContain("Theme: a bell tower.");
  expect(message).toMatch(/The protagonist: (slight|broad-shouldered|wiry), (in their twenties|in middle age|elderly)/);
  expect(message).toContain("1. easy (about 25 words)");
  expect(message).not.toContain("P-0413");
  // The project's half stays: the format and the typeability rules, with the plan.
  expect(body.system).toContain("exactly 8 chapters");
  expect(body.system).toContain("printable ASCII only");

  await settle(stack.t);
  const story = (await stack.t.query(api.stories.getStory, {}))!;
  expect(story).toMatchObject({
    patientNumber: "#928",
    imageGenerationPrompt: file.imageGenerationPrompt,
    imageUrl: expect.stringMatching(/^https?:\/\//),
  });
  const [request] = stack.recraft.requests;
  expect(request!.prompt!.startsWith(`${file.imageGenerationPrompt}, `)).toBe(true);
  expect(request!.prompt!.endsWith(`, ${MOOD}`)).toBe(true);

  // The next run's message names the stories before it, in the voice's own words.
  stack.anthropic.setBehavior({ kind: "caseFile", caseFile: caseFile({ title: "The Second Bell", patientNumber: "#929" }) });
  await runStory(stack.t);
  expect((stack.anthropic.requests[1]!.body as Body).messages[0]!.content).toContain(
    'Already archived: #928 Edith Marrow, "The Bell of Ward Nine".',
  );
});

test("the model's prompt limit applies to what the voice returns, not to the stored prompt", async () => {
  stack.setEnv({ RECRAFT_MODEL: "recraftv3" }); // 1000 bytes
  // Fits alone; the voice's enrichment takes it over the limit.
  const prompt = "a".repeat(1000 - 20);
  const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile({ imageGenerationPrompt: prompt }));
  await settle(stack.t);
  expect((await jobOf(stack.t, storyId)).error).toMatchObject({
    step: "validate",
    code: "prompt_too_long",
    message: expect.stringMatching(/recraftv3 accepts at most 1000/),
  });
  expect(stack.recraft.requests).toHaveLength(0);
});

test("a voice that throws fails the job as bad_config, naming the voice, and sends nothing", async () => {
  vi.spyOn(gameVoice, "portraitPrompt").mockImplementationOnce(() => {
    throw new Error("no features left to pick");
  });
  const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
  await settle(stack.t);
  expect((await jobOf(stack.t, storyId)).error).toMatchObject({
    step: "validate",
    code: "bad_config",
    message: expect.stringContaining("voice.portraitPrompt threw: Error: no features left to pick"),
  });
  expect(stack.recraft.requests).toHaveLength(0);
  vi.restoreAllMocks();
});
