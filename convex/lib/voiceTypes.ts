/**
 * The contract of convex/voice.ts, the one file a game replaces to keep its own
 * prompt, protagonist and portrait enrichment. Both functions run inside
 * actions (a story run's and a portrait job's), so they may be random.
 */
import type { Doc } from "../_generated/dataModel";

export type Difficulty = "easy" | "medium" | "hard";

type StoryContext = {
  /** The newest stories first (as many as STORY_RECENT_COUNT), so Claude does not repeat them. */
  recent: { title: string; patientName: string; patientNumber: string }[];
  /** The chapter plan (STORY_CHAPTER_PLAN): one difficulty per chapter, in order. */
  chapters: Difficulty[];
  /** The run's hint (a theme from the console or a script), if any. */
  hint?: string;
};

export type Voice = {
  /**
   * The user message Claude gets. The structured-output schema, the
   * typeability rules and the repair turn are this project's and are sent
   * with it (lib/storyWriter.ts).
   */
  storyPrompt(context: StoryContext): string;
  /**
   * What Recraft is sent for this story; the stored imageGenerationPrompt
   * stays as Claude wrote it. The model's prompt limit and the blank-prompt
   * rule apply to what this returns.
   */
  portraitPrompt(story: Doc<"stories">): string;
};
