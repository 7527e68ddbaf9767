/**
 * Configuration from Convex environment variables (`npx convex env set NAME value`).
 * Every setting has a documented default; a malformed number falls back to it with a
 * warning rather than breaking the mutation that reads it (an insert must never fail
 * because of a typo in an operator's setting).
 */

const MAX_PROMPT_BYTES = 1000; // Recraft v2/v3 prompt limit

function text(name: string, fallback: string): string {
  const value = process.env[name]?.trim();
  return value ? value : fallback;
}

function integer(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.warn(`config: ${name}=${JSON.stringify(raw)} is not an integer >= ${min}; using ${fallback}`);
    return fallback;
  }
  return value;
}

function list(name: string, fallback: string): string[] {
  return text(name, fallback)
    .split(",")
    .map((host) => host.trim().toLowerCase())
    .filter(Boolean);
}

export type RecraftConfig = ReturnType<typeof recraftConfig>;

export function recraftConfig() {
  return {
    apiKey: process.env.RECRAFT_API_KEY?.trim() || undefined,
    apiUrl: text("RECRAFT_API_URL", "https://external.api.recraft.ai/v1").replace(/\/+$/, ""),
    imageHosts: list("RECRAFT_IMAGE_HOSTS", "img.recraft.ai"),
    model: text("RECRAFT_MODEL", "recraftv3"),
    style: text("RECRAFT_STYLE", "realistic_image"),
    size: text("RECRAFT_SIZE", "1024x1024"),
    requestTimeoutMs: integer("PORTRAIT_REQUEST_TIMEOUT_MS", 45_000, 1),
    downloadTimeoutMs: integer("PORTRAIT_DOWNLOAD_TIMEOUT_MS", 15_000, 1),
    maxBytes: integer("PORTRAIT_MAX_BYTES", 20 * 1024 * 1024, 1),
    maxPromptBytes: MAX_PROMPT_BYTES,
  };
}

export type QueueConfig = ReturnType<typeof queueConfig>;

export function queueConfig() {
  return {
    maxConcurrency: integer("PORTRAIT_MAX_CONCURRENCY", 4, 1),
    maxPerMinute: integer("PORTRAIT_MAX_PER_MINUTE", 100, 1),
    maxAttempts: integer("PORTRAIT_MAX_ATTEMPTS", 1, 1),
    stallMs: integer("PORTRAIT_STALL_MS", 5 * 60_000, 1),
    retryInitialMs: integer("PORTRAIT_RETRY_INITIAL_MS", 2_000, 0),
    retryMaxMs: integer("PORTRAIT_RETRY_MAX_MS", 5 * 60_000, 0),
  };
}

/** The default Claude model: the SDK's current Sonnet (see the README's "Story runs"). */
export const DEFAULT_STORY_MODEL = "claude-sonnet-5-5";
/** The game's prompt: four easy chapters, two medium, two hard. */
export const DEFAULT_CHAPTER_PLAN = "easy:4,medium:2,hard:2";
/**
 * The Anthropic SDK refuses a non-streaming request whose max_tokens could take
 * longer than 10 minutes at its assumed 128k tokens per hour: above 21,333.
 */
export const SDK_NONSTREAMING_MAX_TOKENS = Math.floor((128_000 * 10) / 60);

export type Difficulty = "easy" | "medium" | "hard";

/** STORY_CHAPTER_PLAN as difficulties in order, e.g. "easy:4,medium:2,hard:2". Null when malformed. */
export function parseChapterPlan(raw: string): Difficulty[] | null {
  const plan: Difficulty[] = [];
  for (const part of raw.split(",")) {
    const match = part.trim().match(/^(easy|medium|hard)\s*:\s*(\d+)$/);
    if (!match) return null;
    plan.push(...Array<Difficulty>(Number(match[2])).fill(match[1] as Difficulty));
  }
  return plan.length >= 1 && plan.length <= 30 ? plan : null;
}

export type StoryConfig = ReturnType<typeof storyConfig>;

export function storyConfig() {
  let maxTokens = integer("STORY_MAX_TOKENS", 16_000, 1_024);
  if (maxTokens > SDK_NONSTREAMING_MAX_TOKENS) {
    console.warn(
      `config: STORY_MAX_TOKENS=${maxTokens} is above ${SDK_NONSTREAMING_MAX_TOKENS}, the most the Anthropic SDK sends without streaming; using ${SDK_NONSTREAMING_MAX_TOKENS}`,
    );
    maxTokens = SDK_NONSTREAMING_MAX_TOKENS;
  }
  let plan = parseChapterPlan(text("STORY_CHAPTER_PLAN", DEFAULT_CHAPTER_PLAN));
  if (!plan) {
    console.warn(`config: STORY_CHAPTER_PLAN=${JSON.stringify(process.env.STORY_CHAPTER_PLAN)} is not like "${DEFAULT_CHAPTER_PLAN}" (1 to 30 chapters); using the default`);
    plan = parseChapterPlan(DEFAULT_CHAPTER_PLAN)!;
  }
  return {
    apiKey: process.env.ANTHROPIC_API_KEY?.trim() || undefined,
    model: text("STORY_MODEL", DEFAULT_STORY_MODEL),
    maxTokens,
    plan,
    maxAttempts: integer("STORY_MAX_ATTEMPTS", 3, 1),
    retryDelayMs: integer("STORY_RETRY_DELAY_MS", 5 * 60_000, 0),
    // How many earlier stories each request names, so Claude does not repeat them.
    recentStories: Math.min(50, integer("STORY_RECENT_COUNT", 20, 0)),
  };
}

/** STORY_DAILY=off switches off the daily story (the cron still fires, and does nothing). */
export function dailyStoryEnabled(): boolean {
  return !["off", "false", "0", "no"].includes(text("STORY_DAILY", "on").toLowerCase());
}

export { MAX_PROMPT_BYTES };

/** Every secret this deployment knows, for redaction. */
export function secrets(): string[] {
  return [process.env.RECRAFT_API_KEY, process.env.ANTHROPIC_API_KEY]
    .map((s) => s?.trim())
    .filter((s): s is string => !!s && s.length >= 4);
}
