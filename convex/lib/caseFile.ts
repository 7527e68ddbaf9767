/**
 * The case file format, in two strengths:
 *
 * - `playabilityProblems`: what the game cannot show or play (insertStory's
 *   check). Lenient on purpose, so every story the game already stores would
 *   pass: any number of chapters, any image prompt (a bad one fails its
 *   portrait job, never the story).
 * - `checkCaseFile`: what a story run demands of Claude's answer (every field,
 *   the chapter plan, typeable chapters), split into the problems that block
 *   the insert and the ones that only cost the portrait. Whether the title's
 *   slug is taken needs the database: convex/storyRuns.ts adds that problem.
 *
 * A chapter is typed on a US keyboard, so it must be one paragraph of printable
 * ASCII (0x20-0x7E). Typographic characters with an exact keyboard spelling are
 * normalised first; anything else is a problem to send back to Claude.
 */
import type { StoryInput } from "../validators";
import { MAX_PROMPT_BYTES, type Difficulty } from "./config";

export type { Difficulty };

const DIFFICULTIES: readonly Difficulty[] = ["easy", "medium", "hard"];

function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

// Safe substitutions: the keyboard spelling of the same mark, or invisible
// characters dropped. Order matters: dashes before whitespace is collapsed.
const SUBSTITUTIONS: [RegExp, string][] = [
  // The zero-width joiner stands outside the class: inside it, it would read as joining its neighbours.
  [/[\u00AD\u200B\u200C\u2060\uFEFF]|\u200D/g, ""], // soft hyphen, zero-width characters
  [/[\u2018\u2019\u201A\u201B]/g, "'"], // curly single quotes, apostrophe
  [/[\u201C\u201D\u201E\u201F]/g, '"'], // curly double quotes
  [/[\u2010\u2011\u2012\u2013\u2212]/g, "-"], // hyphens, figure and en dash, minus
  [/[\u2014\u2015]/g, " - "], // em dash, horizontal bar
  [/\u2026/g, "..."], // ellipsis
  [/\s+/g, " "], // line breaks, tabs, non-breaking and other spaces: one paragraph
];

/** A chapter with safe substitutions applied, and how many characters changed. */
export function normalizeChapter(text: string): { text: string; changed: boolean } {
  let out = text;
  for (const [pattern, replacement] of SUBSTITUTIONS) out = out.replace(pattern, replacement);
  out = out.trim();
  return { text: out, changed: out !== text.trim() };
}

const TYPEABLE = /^[\x20-\x7E]*$/;

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Why a (normalised) chapter cannot be typed, or null. */
export function untypeable(text: string): string | null {
  if (text === "") return "is empty";
  if (TYPEABLE.test(text)) return null;
  const bad = [...new Set([...text].filter((char) => !TYPEABLE.test(char)))].slice(0, 8);
  return `has characters a US keyboard cannot type: ${bad.map((c) => `${JSON.stringify(c)} (${codePoint(c)})`).join(", ")}`;
}

/** "4 easy, then 2 medium, then 2 hard" */
export function describePlan(plan: readonly Difficulty[]): string {
  const runs: [Difficulty, number][] = [];
  for (const level of plan) {
    const last = runs[runs.length - 1];
    if (last && last[0] === level) last[1]++;
    else runs.push([level, 1]);
  }
  return runs.map(([level, n]) => `${n} ${level}`).join(", then ");
}

/**
 * The game's slug of a title, as its frontend computes it for links
 * (`/cases/${slugify(story.title)}`): lower-case, keep only a-z, 0-9,
 * whitespace and dashes, whitespace runs to one dash, dash runs to one dash,
 * no dash at either end. Every stored slug is this, so every link resolves.
 */
export function slugify(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9\s-]/g, "")
    .replace(/\s+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
}

/** The insert path of every story: chapters normalised to typeable text; every other field kept exactly as given. */
export function normalizeStory(story: StoryInput): StoryInput {
  return { ...story, chapters: story.chapters.map(({ text, difficulty }) => ({ text: normalizeChapter(text).text, difficulty })) };
}

const NO_SLUG = "has no letter or digit the game's slug keeps (a-z, 0-9), so the case file would have no link";

/** What the game cannot show or play (insertStory refuses these, and only these). */
export function playabilityProblems(story: StoryInput): string[] {
  const problems: string[] = [];
  if (story.title.trim() === "") problems.push("title is blank");
  else if (slugify(story.title) === "") problems.push(`title ${JSON.stringify(story.title)} ${NO_SLUG}`);
  if (story.chapters.length === 0) problems.push("there are no chapters");
  story.chapters.forEach(({ text }, i) => {
    const why = untypeable(normalizeChapter(text).text);
    if (why) problems.push(`chapter ${i + 1} ${why}`);
  });
  return problems;
}

type ProblemKind = "shape" | "plan" | "untypeable" | "title_taken" | "image_prompt";
export type Problem = { kind: ProblemKind; message: string };
export type Checked = {
  /** The normalised case file, when its shape allows one (it may still have problems). */
  story: StoryInput | null;
  problems: Problem[];
  /** Chapters changed by safe substitutions. */
  normalized: number;
};

const TEXT_FIELDS = ["title", "introduction", "patientName", "patientNumber", "story"] as const;

/** A story run's check of Claude's answer (parsed JSON, so `unknown`). */
export function checkCaseFile(input: unknown, plan: readonly Difficulty[]): Checked {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { story: null, problems: [{ kind: "shape", message: "the answer is not a JSON object" }], normalized: 0 };
  }
  const file = input as Record<string, unknown>;
  const problems: Problem[] = [];
  const shape = (message: string) => problems.push({ kind: "shape", message });
  for (const field of TEXT_FIELDS) {
    if (typeof file[field] !== "string" || (file[field] as string).trim() === "") shape(`${field} must be a non-empty string`);
  }
  if (typeof file.title === "string" && file.title.trim() && slugify(file.title) === "") shape(`title ${NO_SLUG}`);

  const prompt = typeof file.imageGenerationPrompt === "string" ? file.imageGenerationPrompt.trim() : "";
  if (prompt === "") problems.push({ kind: "image_prompt", message: "imageGenerationPrompt is blank: describe the patient's portrait" });
  const bytes = utf8Bytes(prompt);
  if (bytes > MAX_PROMPT_BYTES) {
    problems.push({
      kind: "image_prompt",
      message: `imageGenerationPrompt is ${bytes} UTF-8 bytes; shorten it to under ${MAX_PROMPT_BYTES}`,
    });
  }

  const rawChapters = Array.isArray(file.chapters) ? file.chapters : null;
  if (!rawChapters) shape("chapters must be an array");
  let normalized = 0;
  const chapters = (rawChapters ?? []).map((chapter, i) => {
    const { text, difficulty } = (chapter ?? {}) as Record<string, unknown>;
    if (typeof text !== "string") shape(`chapter ${i + 1} has no text`);
    if (!DIFFICULTIES.includes(difficulty as Difficulty)) shape(`chapter ${i + 1} has difficulty ${JSON.stringify(difficulty)}`);
    const result = normalizeChapter(typeof text === "string" ? text : "");
    if (result.changed) normalized++;
    const why = typeof text === "string" ? untypeable(result.text) : null;
    if (why) problems.push({ kind: "untypeable", message: `chapter ${i + 1} ${why}` });
    return { text: result.text, difficulty: difficulty as Difficulty };
  });
  if (rawChapters) {
    if (chapters.length !== plan.length) {
      problems.push({ kind: "plan", message: `expected ${plan.length} chapters (${describePlan(plan)}), got ${chapters.length}` });
    } else {
      chapters.forEach(({ difficulty }, i) => {
        if (DIFFICULTIES.includes(difficulty) && difficulty !== plan[i]) {
          problems.push({ kind: "plan", message: `chapter ${i + 1} is ${difficulty}; the plan wants ${plan[i]}` });
        }
      });
    }
  }
  if (problems.some((p) => p.kind === "shape")) return { story: null, problems, normalized };
  const str = (key: (typeof TEXT_FIELDS)[number]) => (file[key] as string).trim();
  return {
    story: {
      title: str("title"),
      introduction: str("introduction"),
      chapters,
      patientName: str("patientName"),
      patientNumber: str("patientNumber"),
      story: str("story"),
      imageGenerationPrompt: prompt,
    },
    problems,
    normalized,
  };
}

/** Problems that block the insert (the image prompt's only cost the portrait). */
export const blocking = (problems: Problem[]) => problems.filter((p) => p.kind !== "image_prompt");
