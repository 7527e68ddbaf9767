import type { StoryInput } from "../validators";
import { MAX_PROMPT_BYTES } from "./config";

export const CHAPTER_COUNT = 10;
export const DIFFICULTY_MIX = { easy: 4, medium: 4, hard: 2 } as const;
const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/**
 * Checks a case file against the game's format. Returns the problems found
 * (empty when valid); takes `unknown` because it guards what a model wrote.
 */
export function caseFileProblems(input: unknown): string[] {
  if (typeof input !== "object" || input === null) return ["case file is not an object"];
  const file = input as Record<string, unknown>;
  const problems: string[] = [];
  for (const field of ["title", "slug", "introduction", "patientName", "patientNumber", "story", "imageGenerationPrompt"]) {
    const value = file[field];
    if (typeof value !== "string" || value.trim() === "") problems.push(`${field} must be a non-empty string`);
  }
  if (typeof file.slug === "string" && file.slug && !SLUG.test(file.slug)) {
    problems.push("slug must be lower-case kebab-case");
  }
  if (typeof file.imageGenerationPrompt === "string") {
    const bytes = utf8Bytes(file.imageGenerationPrompt);
    if (bytes > MAX_PROMPT_BYTES) {
      problems.push(`imageGenerationPrompt is ${bytes} UTF-8 bytes; Recraft accepts at most ${MAX_PROMPT_BYTES}`);
    }
  }
  problems.push(...chapterProblems(file.chapters));
  return problems;
}

function chapterProblems(chapters: unknown): string[] {
  if (!Array.isArray(chapters)) return ["chapters must be an array"];
  const problems: string[] = [];
  if (chapters.length !== CHAPTER_COUNT) problems.push(`expected ${CHAPTER_COUNT} chapters, got ${chapters.length}`);
  const seen = { easy: 0, medium: 0, hard: 0 };
  chapters.forEach((chapter, i) => {
    const { text, difficulty } = (chapter ?? {}) as Record<string, unknown>;
    if (typeof text !== "string" || text.trim() === "") problems.push(`chapter ${i + 1} has no text`);
    if (difficulty === "easy" || difficulty === "medium" || difficulty === "hard") seen[difficulty] += 1;
    else problems.push(`chapter ${i + 1} has difficulty ${JSON.stringify(difficulty)}`);
  });
  for (const level of ["easy", "medium", "hard"] as const) {
    if (chapters.length === CHAPTER_COUNT && seen[level] !== DIFFICULTY_MIX[level]) {
      problems.push(`expected ${DIFFICULTY_MIX[level]} ${level} chapters, got ${seen[level]}`);
    }
  }
  return problems;
}

/** Narrows a validated case file to exactly the stored fields (drops extras a model added). */
export function toStoryInput(file: Record<string, unknown>): StoryInput {
  const chapters = (file.chapters as { text: string; difficulty: "easy" | "medium" | "hard" }[]).map(
    ({ text, difficulty }) => ({ text: text.trim(), difficulty }),
  );
  const str = (key: string) => (file[key] as string).trim();
  return {
    title: str("title"),
    slug: str("slug"),
    introduction: str("introduction"),
    chapters,
    patientName: str("patientName"),
    patientNumber: str("patientNumber"),
    story: str("story"),
    imageGenerationPrompt: str("imageGenerationPrompt"),
  };
}
