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
  const secondMs = integer("PORTRAIT_RATE_SECOND_MS", 1_000, 1);
  return {
    maxConcurrency: Math.min(integer("PORTRAIT_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, 1), 1000),
    maxPerSecond: Math.min(integer("PORTRAIT_MAX_PER_SECOND", 5, 1), MAX_PER_WINDOW),
    maxPerMinute: Math.min(integer("PORTRAIT_MAX_PER_MINUTE", 100, 1), MAX_PER_WINDOW),
    // Window lengths: Recraft's second and minute; shorter ones scale the limits (the bench runs at x10).
    secondMs,
    minuteMs: integer("PORTRAIT_RATE_MINUTE_MS", 60_000, 1),
    // How late after its slot a request may reach the provider (default: two second windows).
    startToleranceMs: integer("PORTRAIT_START_TOLERANCE_MS", 2 * secondMs, 4),
    maxAttempts: integer("PORTRAIT_MAX_ATTEMPTS", 1, 1),
    stallMs: integer("PORTRAIT_STALL_MS", 5 * 60_000, 1),
    retryInitialMs: integer("PORTRAIT_RETRY_INITIAL_MS", 2_000, 0),
    retryMaxMs: integer("PORTRAIT_RETRY_MAX_MS", 5 * 60_000, 0),
  };
}

export function storyConfig() {
  return {
    model: text("STORY_MODEL", "claude-sonnet-4-5"),
    maxTokens: integer("STORY_MAX_TOKENS", 8_000, 256),
  };
}

export { MAX_PROMPT_BYTES };

/** Every secret this deployment knows, for redaction. */
export function secrets(): string[] {
  return [process.env.RECRAFT_API_KEY, process.env.ANTHROPIC_API_KEY]
    .map((s) => s?.trim())
    .filter((s): s is string => !!s && s.length >= 4);
}
