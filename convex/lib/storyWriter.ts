/**
 * Asks Claude for one case file with structured output: a forced tool call whose
 * input schema is the game's format. The answer is checked (stop reason, shape,
 * chapter mix, prompt size) before anything is inserted.
 */
import Anthropic from "@anthropic-ai/sdk";
import type { StoryInput } from "../validators";
import { caseFileProblems, toStoryInput } from "./caseFile";
import { MAX_PROMPT_BYTES, storyConfig } from "./config";
import { describeError } from "./redact";

export const CASE_FILE_TOOL = "record_case_file";

const caseFileSchema = {
  type: "object" as const,
  properties: {
    title: { type: "string", description: "The case file's title." },
    slug: { type: "string", description: "URL slug: lower-case words joined by hyphens." },
    introduction: { type: "string", description: "Two or three sentences that open the case file." },
    chapters: {
      type: "array",
      minItems: 10,
      maxItems: 10,
      description: "Ten chapters the player types, in order: 4 easy, then 4 medium, then 2 hard.",
      items: {
        type: "object",
        properties: {
          text: { type: "string", description: "One to three sentences to type." },
          difficulty: { type: "string", enum: ["easy", "medium", "hard"] },
        },
        required: ["text", "difficulty"],
      },
    },
    patientName: { type: "string" },
    patientNumber: { type: "string", description: 'Patient number such as "P-0413".' },
    story: { type: "string", description: "The patient's story in one paragraph." },
    imageGenerationPrompt: {
      type: "string",
      description: `A portrait description of the patient for an image model; under ${MAX_PROMPT_BYTES} bytes.`,
    },
  },
  required: ["title", "slug", "introduction", "chapters", "patientName", "patientNumber", "story", "imageGenerationPrompt"],
};

const SYSTEM = [
  "You write case files for a horror typing game set in an abandoned psychiatric hospital.",
  "Each case file follows one patient. The player types the chapters, so keep every chapter",
  "to one to three typeable sentences with plain punctuation. Dread over gore.",
  `Record the case file with the ${CASE_FILE_TOOL} tool.`,
].join(" ");

export type StoryStage = "config" | "request" | "response" | "validation" | "insert";
export type WriteResult = { ok: true; story: StoryInput } | { ok: false; stage: StoryStage; message: string };

export async function writeCaseFile(hint?: string): Promise<WriteResult> {
  if (!process.env.ANTHROPIC_API_KEY?.trim()) {
    return { ok: false, stage: "config", message: "ANTHROPIC_API_KEY is not set" };
  }
  const config = storyConfig();
  const client = new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY.trim() });
  let message: Anthropic.Message;
  try {
    message = await client.messages.create({
      model: config.model,
      max_tokens: config.maxTokens,
      system: SYSTEM,
      messages: [{ role: "user", content: `Write a new case file.${hint ? ` Theme: ${hint}` : ""}` }],
      tools: [{ name: CASE_FILE_TOOL, description: "Records one case file in the game's format.", input_schema: caseFileSchema }],
      tool_choice: { type: "tool", name: CASE_FILE_TOOL },
    });
  } catch (error) {
    const status = error instanceof Anthropic.APIError && error.status ? ` (HTTP ${error.status})` : "";
    return { ok: false, stage: "request", message: `Claude request failed${status}: ${describeError(error)}` };
  }
  if (message.stop_reason !== "tool_use") {
    return { ok: false, stage: "response", message: `Claude stopped with ${message.stop_reason}, not a case file` };
  }
  const call = message.content.find((block) => block.type === "tool_use" && block.name === CASE_FILE_TOOL);
  if (!call || call.type !== "tool_use") {
    return { ok: false, stage: "response", message: `Claude did not call ${CASE_FILE_TOOL}` };
  }
  const problems = caseFileProblems(call.input);
  if (problems.length > 0) return { ok: false, stage: "validation", message: problems.join("; ") };
  return { ok: true, story: toStoryInput(call.input as Record<string, unknown>) };
}
