/**
 * The voice of the case files: what Claude is asked to write and what Recraft
 * is asked to paint. A game keeps its own prompt, protagonist and portrait
 * enrichment by replacing this file (README, "Moving the game over"); nothing
 * else in the backend knows what the stories sound like.
 */
import { describePlan } from "./lib/caseFile";
import type { Difficulty, Voice } from "./lib/voiceTypes";

const RULES: Record<Difficulty, string> = {
  easy: "EASY chapters: 30 to 40 words; simple subject-verb-object sentences; short common words; only periods and commas; no numbers or symbols.",
  medium:
    "MEDIUM chapters: 30 to 40 words; simple, compound and some complex sentences; more varied, atmospheric words; may use semicolons, apostrophes and hyphens; occasional numbers (years, room numbers).",
  hard: "HARD chapters: 40 to 45 words; complex literary sentences; advanced vocabulary; full keyboard punctuation (colons, semicolons, parentheses, quotation marks, ! and ?); numbers, percentages and times such as 3:47 AM.",
};

const voice: Voice = {
  storyPrompt({ recent, chapters, hint }) {
    const lines = [
      "You write case files for a horror typing game: the stories of the patients of an asylum, each telling what happened to one person before they were committed.",
      "Each case file is one continuous story (normalcy, unease, fear, terror, collapse) told in chapters the player types. Psychological dread over gore; suitable for general audiences.",
      "The title is atmospheric, 3 to 8 words. The introduction opens the case file in 100 to 120 words. The patient number looks like P-0413.",
      ...[...new Set(chapters)].map((level) => RULES[level]),
      "Each chapter builds on the previous one; each is slightly harder to type than the last.",
      "The image prompt describes the patient (age, features, clothing, a haunted expression) as a dark, moody portrait photograph.",
      `Write a new case file with exactly ${chapters.length} chapters: ${describePlan(chapters)}.`,
      `Chapter difficulties in order: ${chapters.join(", ")}.`,
    ];
    if (hint) lines.push(`Theme: ${hint}`);
    if (recent.length > 0) {
      lines.push(
        "Earlier case files (do not reuse these titles, patient names or their plots):",
        ...recent.map((story) => `- "${story.title}" (patient ${story.patientName}, ${story.patientNumber})`),
      );
    }
    return lines.join("\n");
  },

  portraitPrompt(story) {
    return story.imageGenerationPrompt;
  },
};

export default voice;
