/**
 * A voice in the shape the game needs (README, "Moving the game over"): its
 * own setting, a random protagonist, `#NNN` patient numbers, its own lengths,
 * and a portrait prompt enriched with features and a mood. The text is this
 * project's own, written for the test; tests/voice.test.ts swaps it in for
 * convex/voice.ts.
 */
import type { Voice } from "../../convex/lib/voiceTypes";

const AGES = ["in their twenties", "in middle age", "elderly"];
const BUILDS = ["slight", "broad-shouldered", "wiry"];
const FEATURES = ["a scar through one eyebrow", "hollow cheeks", "a crooked nose", "sunken, sleepless eyes"];
export const MOOD = "lit by a single bulb, shadows pooling, an uneasy stillness";

const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)];

const gameVoice: Voice = {
  storyPrompt({ recent, chapters, hint }) {
    return [
      "GAME VOICE. Write one patient file from the Blackmoor Sanatorium archive.",
      `The protagonist: ${pick(BUILDS)}, ${pick(AGES)}; give them a name that fits.`,
      "Patient numbers are a hash and three digits, like #512.",
      `Chapters, in order: ${chapters.map((level, i) => `${i + 1}. ${level} (about ${level === "hard" ? 60 : 25} words)`).join("; ")}.`,
      hint ? `Theme: ${hint}.` : "Theme: your choice.",
      ...recent.map((story) => `Already archived: ${story.patientNumber} ${story.patientName}, "${story.title}".`),
    ].join("\n");
  },
  portraitPrompt(story) {
    return `${story.imageGenerationPrompt}, ${pick(FEATURES)}, ${MOOD}`;
  },
};

export default gameVoice;
