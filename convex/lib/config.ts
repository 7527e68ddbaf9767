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
 * request, download and compression timeouts together stay a minute under that, leaving
 * the claim, the storage write and the mutations their time.
 */
export const ACTION_LIMIT_MS = 10 * 60_000;
const MAX_REQUEST_TIMEOUT_MS = 5 * 60_000;
const MAX_DOWNLOAD_TIMEOUT_MS = 3 * 60_000;
const MAX_COMPRESS_TIMEOUT_MS = 60_000;

/**
 * The runtime gives an action 64 MiB of ArrayBuffers, and its `Blob` keeps its
 * parts as ArrayBuffers inside the isolate. At the peak of a store the image
 * exists three times: the Blob's parts (one copy of each chunk,
 * lib/recraft.ts readImage), the copy `ctx.storage.store` makes of them, and
 * the fetched chunks not yet collected. With a quarter of the budget left for
 * everything else, the byte cap is ¾ × 64 MiB ÷ 3 = 16 MiB, also the default.
 * The bench's memory figure (scripts/lib/memoryProbe.ts) measures Node's side.
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
function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) {
    log.warn("config.not_an_integer", {
      variable: name,
      value: raw,
      using: fallback,
      message: `${name}=${JSON.stringify(raw)} is not an integer; using the default ${fallback}`,
    });
    return fallback;
  }
  if (value < min || value > max) {
    const bound = value < min ? min : max;
    log.warn("config.out_of_range", {
      variable: name,
      value,
      min,
      max,
      using: bound,
      message: `${name}=${value} is outside ${min}..${max}; using ${bound}`,
    });
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
    /** A custom style's UUID, sent as `style_id` instead of a style (the game's look). */
    styleId: process.env.RECRAFT_STYLE_ID?.trim() || undefined,
    size: text("RECRAFT_SIZE", "1024x1024"),
    requestTimeoutMs: integer("PORTRAIT_REQUEST_TIMEOUT_MS", 45_000, 1, MAX_REQUEST_TIMEOUT_MS),
    downloadTimeoutMs: integer("PORTRAIT_DOWNLOAD_TIMEOUT_MS", 15_000, 1, MAX_DOWNLOAD_TIMEOUT_MS),
    maxBytes: integer("PORTRAIT_MAX_BYTES", MAX_IMAGE_BYTES, 1, MAX_IMAGE_BYTES),
  };
}

export type TinifyConfig = ReturnType<typeof tinifyConfig>;

/** Compression before storing (the game's TinyPNG step); without TINIFY_API_KEY nothing is sent. */
export function tinifyConfig() {
  return {
    apiKey: process.env.TINIFY_API_KEY?.trim() || undefined,
    apiUrl: text("TINIFY_API_URL", "https://api.tinify.com").replace(/\/+$/, ""),
    // The longest side of the stored portrait (a `fit` resize; smaller images are not enlarged).
    maxSide: integer("PORTRAIT_MAX_SIDE", 1024, 1, 8192),
    // One deadline for both exchanges (the shrink and the output).
    timeoutMs: integer("PORTRAIT_COMPRESS_TIMEOUT_MS", 30_000, 1, MAX_COMPRESS_TIMEOUT_MS),
    maxBytes: integer("PORTRAIT_MAX_BYTES", MAX_IMAGE_BYTES, 1, MAX_IMAGE_BYTES),
  };
}

export type QueueConfig = ReturnType<typeof queueConfig>;

/**
 * In-flight portrait jobs by default: what fits the platform's scheduler.
 * Every attempt is one scheduled action that holds one of the scheduler's
 * places for its whole run (request and download), and the Convex backend runs
 * SCHEDULED_JOB_EXECUTION_PARALLELISM (8 by default; docs.convex.dev/production/state/limits)
 * scheduled functions at once on a Free/Starter deployment. Six leaves two
 * places for the crons, the dispatcher loop and story runs, so no portrait
 * waits behind the scheduler's own limit. Professional deployments run 256
 * at once: set PORTRAIT_MAX_CONCURRENCY to ~40 there to reach Recraft's 100 a
 * minute at 15 s an image (Little's law: 100/min x 15 s = 25, plus headroom).
 */
export const DEFAULT_MAX_CONCURRENCY = 6;
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
    // The margin added to each window between the start log's clock and the provider's (lib/pacing.ts).
    startToleranceMs: integer("PORTRAIT_START_TOLERANCE_MS", Math.ceil(secondMs / 10), 0, 60_000),
    maxAttempts: integer("PORTRAIT_MAX_ATTEMPTS", 1, 1, 10),
    stallMs: integer("PORTRAIT_STALL_MS", 5 * 60_000, 1, 24 * 60 * 60_000),
    retryInitialMs: integer("PORTRAIT_RETRY_INITIAL_MS", 2_000, 0, 60 * 60_000),
    retryMaxMs: integer("PORTRAIT_RETRY_MAX_MS", 5 * 60_000, 0, 24 * 60 * 60_000),
  };
}

/**
 * The sweep's time backstop for a job whose action still looks alive, counted
 * from its request's real start: PORTRAIT_STALL_MS, but never less than a live
 * attempt may take (the request and download timeouts with a quarter more for
 * the claim, storage and mutations, plus the longest wait for a start token).
 * A setting below that would fail live jobs, so it is raised, with a warning
 * at each sweep (once a minute) until the setting is fixed.
 */
export function stallBackstopMs(): number {
  const { stallMs, secondMs, startToleranceMs } = queueConfig();
  const { requestTimeoutMs, downloadTimeoutMs } = recraftConfig();
  const floor = Math.ceil(1.25 * (requestTimeoutMs + downloadTimeoutMs)) + 2 * secondMs + startToleranceMs;
  if (stallMs >= floor) return stallMs;
  log.warn("config.stall_below_live_attempt", {
    variable: "PORTRAIT_STALL_MS",
    value: stallMs,
    using: floor,
    message: "shorter than a live attempt may take (request and download timeouts, start wait)",
  });
  return floor;
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

/** The default Claude model: the SDK's current Sonnet (see docs/ARCHITECTURE.md, "Story runs"). */
export const DEFAULT_STORY_MODEL = "claude-sonnet-5-5";
/** The game's prompt: four easy chapters, two medium, two hard. */
const DEFAULT_CHAPTER_PLAN = "easy:4,medium:2,hard:2";
export type Difficulty = "easy" | "medium" | "hard";

/** STORY_CHAPTER_PLAN as difficulties in order, e.g. "easy:4,medium:2,hard:2". Null when malformed. */
function parseChapterPlan(raw: string): Difficulty[] | null {
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
    // The game names its key CLAUDE_API_KEY; ANTHROPIC_API_KEY (the SDK's name) wins when both are set.
    apiKey: process.env.ANTHROPIC_API_KEY?.trim() || process.env.CLAUDE_API_KEY?.trim() || undefined,
    model: text("STORY_MODEL", DEFAULT_STORY_MODEL),
    // Past MAX_NONSTREAMING_TOKENS the SDK refuses to send a non-streaming request.
    maxTokens: integer("STORY_MAX_TOKENS", 16_000, 1_024, MAX_NONSTREAMING_TOKENS),
    plan,
    maxAttempts: integer("STORY_MAX_ATTEMPTS", 3, 1, 10),
    retryDelayMs: integer("STORY_RETRY_DELAY_MS", 5 * 60_000, 0, 24 * 60 * 60_000),
    // How many earlier stories each request names, so Claude does not repeat them.
    recentStories: integer("STORY_RECENT_COUNT", 20, 0, 50),
    // The SDK's own bounds on one Messages call, explicit rather than its defaults (10 minutes x 3 tries).
    requestTimeoutMs: integer("STORY_REQUEST_TIMEOUT_MS", 4 * 60_000, 10_000, 30 * 60_000),
    sdkMaxRetries: integer("STORY_SDK_MAX_RETRIES", 2, 0, 5),
  };
}

/** The SDK's longest wait between its own retries (its backoff is capped at 8 s), and the run's own mutations. */
const SDK_RETRY_PAUSE_MS = 8_000;
const RUN_MARGIN_MS = 5 * 60_000;

/**
 * The longest a live story attempt can be in flight: two Messages calls (the
 * request and one repair turn), each at most STORY_SDK_MAX_RETRIES + 1 tries
 * of STORY_REQUEST_TIMEOUT_MS, plus the SDK's pauses and a margin. The sweep
 * judges runs by their action's state; this is only its backstop.
 */
export function storyRunBackstopMs(config: StoryConfig = storyConfig()): number {
  const tries = config.sdkMaxRetries + 1;
  return 2 * (tries * config.requestTimeoutMs + config.sdkMaxRetries * SDK_RETRY_PAUSE_MS) + RUN_MARGIN_MS;
}

/** STORY_DAILY=off switches off the daily story (the cron still fires, and does nothing). */
export function dailyStoryEnabled(): boolean {
  return !["off", "false", "0", "no"].includes(text("STORY_DAILY", "on").toLowerCase());
}

export { MAX_PROMPT_BYTES };

/** Every secret this deployment knows, for redaction. */
export function secrets(): string[] {
  const tinify = process.env.TINIFY_API_KEY?.trim();
  return [process.env.RECRAFT_API_KEY, process.env.ANTHROPIC_API_KEY, process.env.CLAUDE_API_KEY, tinify, tinify && btoa(`api:${tinify}`)]
    .map((s) => s?.trim())
    .filter((s): s is string => !!s && s.length >= 4);
}
