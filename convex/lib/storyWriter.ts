/**
 * Claude's half of a story run: the request (structured output through
 * `output_config.format`, the typeability rules, and the voice's message from
 * convex/voice.ts), the repair turn, and the classification of every way a call can
 * fail into a stable code. Imported only by convex/storyRuns.ts, so the
 * modules behind the game's public queries never load the Anthropic SDK.
 *
 * Structured outputs rather than a forced tool: current models (Sonnet 5.5,
 * Opus 5.5) answer a forced `tool_choice` with a 400, and forced tool use never
 * mixed with thinking, which these models run adaptively by default.
 */
import Anthropic from "@anthropic-ai/sdk";
import type { StoryRunDetails, StoryRunError } from "../validators";
import type { Difficulty } from "./caseFile";
import { MAX_PROMPT_BYTES, type StoryConfig } from "./config";
import { logger } from "./log";
import { describeError } from "./redact";

/**
 * The installed SDK's deprecated models (`DEPRECATED_MODELS` in
 * @anthropic-ai/sdk/internal/data/deprecated-models, which its package
 * exports do not expose). tests/storySetup.test.ts fails when the SDK's list
 * and this one differ, so an SDK upgrade cannot leave it stale.
 */
export const DEPRECATED_MODELS: Record<string, string> = {
  "claude-mythos-preview": "June 30th, 2026",
  "claude-sonnet-4-5": "November 30th, 2026",
  "claude-sonnet-4-5-20250929": "November 30th, 2026",
};

/** Logs a warning naming STORY_MODEL when the configured model is on the SDK's deprecated list. */
export function warnIfDeprecated(model: string): boolean {
  const endOfLife = DEPRECATED_MODELS[model];
  if (endOfLife) {
    logger("storyWriter").warn("story.deprecated_model", {
      message: `STORY_MODEL=${model} is deprecated by Anthropic (end of life ${endOfLife}); set STORY_MODEL to a current model`,
    });
  }
  return !!endOfLife;
}

/** Structured outputs accept a subset of JSON Schema: every object closed, no length or count bounds. */
const caseFileSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    title: {
      type: "string",
      description: "The case file's title, new among the case files: its link is made from its letters and digits.",
    },
    introduction: { type: "string", description: "The opening of the case file; paragraphs separated by blank lines." },
    chapters: {
      type: "array",
      minItems: 1,
      description: "The chapters the player types, in the order and difficulties the request gives.",
      items: {
        type: "object",
        additionalProperties: false,
        properties: {
          text: { type: "string", description: "One paragraph of printable US-keyboard ASCII, no line breaks." },
          difficulty: { type: "string", enum: ["easy", "medium", "hard"] },
        },
        required: ["text", "difficulty"],
      },
    },
    patientName: { type: "string", description: "The patient's full name." },
    patientNumber: { type: "string", description: "The patient's number, in the form the request asks for." },
    story: {
      type: "string",
      description: "The introduction and every chapter as one readable narrative, paragraphs separated by blank lines.",
    },
    imageGenerationPrompt: {
      type: "string",
      description: `Two or three sentences describing the patient's portrait for an image model; under ${MAX_PROMPT_BYTES} bytes, no names or text in the image.`,
    },
  },
  required: ["title", "introduction", "chapters", "patientName", "patientNumber", "story", "imageGenerationPrompt"],
};

/**
 * This project's half of the instructions: the answer's format and what the
 * checks enforce (lib/caseFile.ts). What the story is about, its length and
 * its tone are the voice's (convex/voice.ts), sent as the user message.
 */
function systemPrompt(plan: readonly Difficulty[]): string {
  return [
    "You write case files for a typing game. Answer with the case file as JSON in the requested format.",
    `The case file has exactly ${plan.length} chapters, with these difficulties in order: ${plan.join(", ")}.`,
    "Every chapter is a single paragraph typed on a US keyboard: printable ASCII only, straight quotes (' and \"), no curly quotes, no em or en dashes, no ellipsis character, no degree or other special symbols, no line breaks.",
    "The title must differ from every earlier case file's: its link is made from its letters and digits.",
  ].join("\n");
}

export type RecentStory = { title: string; patientName: string; patientNumber: string };

export function repairRequest(problems: string[]): string {
  return [
    "That case file cannot be used as it is:",
    ...problems.map((problem) => `- ${problem}`),
    "Answer with the whole corrected case file, changing only what these problems require.",
  ].join("\n");
}

export type Turn = { role: "user" | "assistant"; content: string };
export type Answer =
  { ok: true; text: string; json: unknown; details: StoryRunDetails } | { ok: false; error: StoryRunError; details: StoryRunDetails };

/** One Messages API call. Never throws: a failure is a classified error. */
export async function askClaude(config: StoryConfig, turns: Turn[], stage: "request" | "repair"): Promise<Answer> {
  const started = Date.now();
  // This runs in a Convex action, never in a browser (the modules behind the game's and the
  // admin's functions bundle without it: tests/storySetup.test.ts).
  const client = new Anthropic({
    apiKey: config.apiKey,
    // Explicit bounds (not the SDK's 10 minutes x 3 tries): the run's sweep backstop is computed from them.
    timeout: config.requestTimeoutMs,
    maxRetries: config.sdkMaxRetries,
  });
  const base = { model: config.model };
  let message: Anthropic.Message;
  try {
    message = await client.messages.create({
      model: config.model,
      max_tokens: config.maxTokens,
      system: systemPrompt(config.plan),
      messages: turns,
      output_config: { format: { type: "json_schema", schema: caseFileSchema } },
    });
  } catch (error) {
    return { ok: false, error: requestError(error, stage), details: { ...base, durationMs: Date.now() - started } };
  }
  const details: StoryRunDetails = {
    ...base,
    durationMs: Date.now() - started,
    anthropicRequestId: (message as { _request_id?: string | null })._request_id ?? undefined,
    inputTokens: message.usage?.input_tokens,
    outputTokens: message.usage?.output_tokens,
    stopReason: message.stop_reason ?? undefined,
  };
  const text = message.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join("");
  if (message.stop_reason === "refusal") {
    return { ok: false, error: { stage: "response", code: "refusal", message: `Claude refused: ${clip(text)}` }, details };
  }
  if (message.stop_reason === "max_tokens") {
    const message_ = `Claude stopped at max_tokens (${config.maxTokens}) before finishing the case file; raise STORY_MAX_TOKENS (at most 21333)`;
    return { ok: false, error: { stage: "response", code: "max_tokens", message: message_ }, details };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined; // the check reports it, and the repair turn asks again
  }
  return { ok: true, text, json, details };
}

const clip = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const seconds = Number(headers?.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

function requestError(error: unknown, stage: "request" | "repair"): StoryRunError {
  const message = `Claude request failed: ${describeError(error)}`;
  if (error instanceof Anthropic.APIConnectionTimeoutError) return { stage, code: "timeout", message };
  if (error instanceof Anthropic.APIConnectionError) return { stage, code: "network_error", message };
  if (error instanceof Anthropic.APIError && error.status) {
    const httpStatus = error.status;
    const base = {
      stage,
      message: `${message} (HTTP ${httpStatus})`,
      httpStatus,
      retryAfterMs: retryAfterMs(error.headers as Headers | undefined),
    };
    if (httpStatus === 401 || httpStatus === 403) return { ...base, code: "unauthorized" };
    if (httpStatus === 429) return { ...base, code: "rate_limited" };
    if (httpStatus === 529) return { ...base, code: "overloaded" };
    return { ...base, code: "http_error" };
  }
  // The SDK refuses some requests before sending them (e.g. a max_tokens that needs streaming).
  return { stage, code: "http_error", message };
}
