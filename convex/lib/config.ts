/**
 * Configuration from Convex environment variables (`npx convex env set NAME value`).
 * Every setting has a documented default; a malformed number falls back to it, and a
 * number outside what the platform and the SDK accept is clamped to the nearest bound,
 * each with a warning naming the variable, rather than breaking the mutation that reads
 * it (an insert must never fail because of a typo in an operator's setting).
 */
import { DEFAULT_RECRAFT_MODEL } from "./recraftModels";
import { logger } from "./log";

const log = logger("config");

/** The prompt budget a case file must fit: Recraft V2/V3's 1000 bytes, so it suits every model. */
const MAX_PROMPT_BYTES = 1000;

/**
 * Convex ends an action after 10 minutes. One attempt is one action: the
 * request and the download timeouts together stay a minute under that, leaving
 * the claim, the storage write and the mutations their time.
 */
export const ACTION_LIMIT_MS = 10 * 60_000;
const MAX_REQUEST_TIMEOUT_MS = 6 * 60_000;
const MAX_DOWNLOAD_TIMEOUT_MS = 3 * 60_000;

/**
 * The runtime gives an action 64 MiB of ArrayBuffers. The bench's memory
 * figure (scripts/lib/memoryProbe.ts) measures the download at 2× the image
 * at most, counting garbage not yet collected; the arithmetic assumes 3× and
 * leaves a quarter of the budget for everything else: the byte cap is at most
 * ¾ × 64 MiB ÷ 3 = 16 MiB, which is also the default.
 */
export const ACTION_ARRAY_BUFFER_BYTES = 64 * 1024 * 1024;
export const PEAK_IMAGE_COPIES = 3;
export const MAX_IMAGE_BYTES = Math.floor((ACTION_ARRAY_BUFFER_BYTES * 3) / 4 / PEAK_IMAGE_COPIES);

/** The Anthropic SDK refuses a non-streaming request whose max_tokens could take over 10 minutes: 3,600 s × max_tokens / 128,000 > 600 s. */
export const MAX_NONSTREAMING_TOKENS = Math.floor((600 * 128_000) / 3_600);

function text(name: string, fallback: string): string {
  const value = process.env[name]?.trim();
  return value ? value : fallback;
}

/** An integer setting in [min, max]: malformed falls back to `fallback`, out of range is clamped; both warn naming the variable. */
export function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) {
    log.warn("config.not_an_integer", { variable: name, value: raw, using: fallback, message: `${name}=${JSON.stringify(raw)} is not an integer; using the default ${fallback}` });
    return fallback;
  }
  if (value < min || value > max) {
    const bound = value < min ? min : max;
    log.warn("config.out_of_range", { variable: name, value, min, max, using: bound, message: `${name}=${value} is outside ${min}..${max}; using ${bound}` });
    return bound;
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
    model: text("RECRAFT_MODEL", DEFAULT_RECRAFT_MODEL),
    /** Unset: the model's own default style, or none for a model that takes no style (lib/recraftModels.ts). */
    style: process.env.RECRAFT_STYLE?.trim() || undefined,
    size: text("RECRAFT_SIZE", "1024x1024"),
    requestTimeoutMs: integer("PORTRAIT_REQUEST_TIMEOUT_MS", 45_000, 1, MAX_REQUEST_TIMEOUT_MS),
    downloadTimeoutMs: integer("PORTRAIT_DOWNLOAD_TIMEOUT_MS", 15_000, 1, MAX_DOWNLOAD_TIMEOUT_MS),
    maxBytes: integer("PORTRAIT_MAX_BYTES", MAX_IMAGE_BYTES, 1, MAX_IMAGE_BYTES),
  };
}

export type QueueConfig = ReturnType<typeof queueConfig>;

/**
 * In-flight portrait jobs a deployment runs safely by default. Little's law at
 * Recraft's limit and the spec's slowest image: 100/min x 15 s = 25 in flight,
 * plus headroom. Convex's limits page (docs.convex.dev/production/state/limits)
 * allows 256 concurrent scheduled jobs and 256 Node / 512 Convex-runtime
 * actions on Professional (S256); Free/Starter (S16) runs 8 scheduled jobs at
 * once, where PORTRAIT_MAX_CONCURRENCY=6 leaves room for the crons and story runs.
 */
export const DEFAULT_MAX_CONCURRENCY = 32;
/** The most requests a window may allow: beyond this the slot spacing is under 10 ms a second. */
const MAX_PER_WINDOW = 8192;

export function queueConfig() {
  const secondMs = integer("PORTRAIT_RATE_SECOND_MS", 1_000, 1, 60_000);
  return {
    maxConcurrency: integer("PORTRAIT_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, 1, 1000),
    maxPerSecond: integer("PORTRAIT_MAX_PER_SECOND", 5, 1, MAX_PER_WINDOW),
    maxPerMinute: integer("PORTRAIT_MAX_PER_MINUTE", 100, 1, MAX_PER_WINDOW),
    // Window lengths: Recraft's second and minute; shorter ones scale the limits (the bench runs at x10).
    secondMs,
    minuteMs: integer("PORTRAIT_RATE_MINUTE_MS", 60_000, 1, 60 * 60_000),
    // How late after its slot a request may reach the provider (default: two second windows).
    startToleranceMs: integer("PORTRAIT_START_TOLERANCE_MS", 2 * secondMs, 4, 60_000),
    maxAttempts: integer("PORTRAIT_MAX_ATTEMPTS", 1, 1, 10),
    stallMs: integer("PORTRAIT_STALL_MS", 5 * 60_000, 1, 24 * 60 * 60_000),
    retryInitialMs: integer("PORTRAIT_RETRY_INITIAL_MS", 2_000, 0, 60 * 60_000),
    retryMaxMs: integer("PORTRAIT_RETRY_MAX_MS", 5 * 60_000, 0, 24 * 60 * 60_000),
  };
}

/** Who is an admin (lib/adminFunctions.ts): ADMIN_SUBJECTS, ADMIN_EMAILS, and Convex Auth's issuer (CONVEX_SITE_URL). */
export function adminConfig() {
  const listed = (name: string) =>
    (process.env[name] ?? "")
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean);
  return {
    subjects: listed("ADMIN_SUBJECTS"),
    emails: listed("ADMIN_EMAILS"),
    convexAuthIssuer: process.env.CONVEX_SITE_URL?.replace(/\/+$/, ""),
  };
}

/** Stories a backfill batch mutation reads (PORTRAIT_BACKFILL_BATCH): each batch is one bounded transaction. */
export function backfillBatchSize(): number {
  return integer("PORTRAIT_BACKFILL_BATCH", 100, 1, 1000);
}

/** The default Claude model: the SDK's current Sonnet (see the README's "Story runs"). */
export const DEFAULT_STORY_MODEL = "claude-sonnet-5-5";
/** The game's prompt: four easy chapters, two medium, two hard. */
export const DEFAULT_CHAPTER_PLAN = "easy:4,medium:2,hard:2";
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
  let plan = parseChapterPlan(text("STORY_CHAPTER_PLAN", DEFAULT_CHAPTER_PLAN));
  if (!plan) {
    log.warn("config.bad_chapter_plan", {
      variable: "STORY_CHAPTER_PLAN",
      value: process.env.STORY_CHAPTER_PLAN,
      using: DEFAULT_CHAPTER_PLAN,
      message: `STORY_CHAPTER_PLAN=${JSON.stringify(process.env.STORY_CHAPTER_PLAN)} is not like "${DEFAULT_CHAPTER_PLAN}" (1 to 30 chapters); using the default`,
    });
    plan = parseChapterPlan(DEFAULT_CHAPTER_PLAN)!;
  }
  return {
    apiKey: process.env.ANTHROPIC_API_KEY?.trim() || undefined,
    model: text("STORY_MODEL", DEFAULT_STORY_MODEL),
    // Past MAX_NONSTREAMING_TOKENS the SDK refuses to send a non-streaming request.
    maxTokens: integer("STORY_MAX_TOKENS", 16_000, 1_024, MAX_NONSTREAMING_TOKENS),
    plan,
    maxAttempts: integer("STORY_MAX_ATTEMPTS", 3, 1, 10),
    retryDelayMs: integer("STORY_RETRY_DELAY_MS", 5 * 60_000, 0, 24 * 60 * 60_000),
    // How many earlier stories each request names, so Claude does not repeat them.
    recentStories: integer("STORY_RECENT_COUNT", 20, 0, 50),
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
