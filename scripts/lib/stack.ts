/**
 * The demo stack: the embedded backend, the fake Recraft and Anthropic servers
 * on 127.0.0.1 (or the real services when their keys are set), and the Convex
 * environment variables pointing at them. Reused by the demo, the bench, the
 * admin UI's bridge server and the browser tests.
 */
import { internal } from "../../convex/_generated/api.js";
import type { Id } from "../../convex/_generated/dataModel.js";
import { readCounts } from "../../convex/lib/jobs.ts";
import type { JobStatus } from "../../convex/validators.ts";
import { startAnthropicServer, type FakeAnthropic } from "../fakes/anthropicServer.ts";
import { startRecraftServer, type FakeRecraft, type RecraftServerOptions } from "../fakes/recraftServer.ts";
import { ADMIN_IDENTITY, newBackend, type Backend } from "./backend.ts";
import { DEMO_DOWNLOAD_LATENCY_MS, demoLatency, failRatePicker, painter } from "./faults.ts";

export const FAKE_RECRAFT_KEY = "rk-demo-fake-recraft-key";
export const FAKE_ANTHROPIC_KEY = "sk-ant-demo-fake-anthropic-key";

export type Counts = Record<JobStatus, number>;
export const LIVE: JobStatus[] = ["pending", "requested", "downloaded"];

export interface DemoStackOptions {
  /** Use the real service for a provider (the demo does when its key is in the environment). */
  real?: { recraft?: boolean; anthropic?: boolean };
  /** Share of generation requests the fake Recraft fails (0..1). */
  failRate?: number;
  /** Overrides of the fake Recraft server (latency, painter, faults...). */
  recraft?: RecraftServerOptions;
  /** Portrait size in pixels for the default painter. */
  portraitSize?: number;
  /** Delay of every fake Claude answer. */
  storyLatencyMs?: number;
  /** Extra Convex environment variables (undefined deletes one). */
  env?: Record<string, string | undefined>;
  /** The Convex modules to run (the bench passes metered ones); default: convex/ as it is. */
  modules?: Record<string, () => Promise<unknown>>;
  /** Where the backend's console output goes; default: the console. */
  backendLog?: (level: string, line: string) => void;
}

export interface DemoStack {
  t: Backend;
  /** The backend as the demo admin, for the admin functions. */
  admin: ReturnType<Backend["withIdentity"]>;
  /** Undefined when the real service is used. */
  recraft?: FakeRecraft;
  anthropic?: FakeAnthropic;
  /** The Convex environment the stack set, secrets masked. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startDemoStack(options: DemoStackOptions = {}): Promise<DemoStack> {
  const recraft = options.real?.recraft
    ? undefined
    : await startRecraftServer({
        apiKey: FAKE_RECRAFT_KEY,
        paint: painter(options.portraitSize ?? 256),
        latencyMs: demoLatency,
        downloadLatencyMs: DEMO_DOWNLOAD_LATENCY_MS,
        fault: failRatePicker(options.failRate ?? 0),
        ...options.recraft,
      });
  const anthropic = options.real?.anthropic
    ? undefined
    : await startAnthropicServer({ apiKey: FAKE_ANTHROPIC_KEY, latencyMs: options.storyLatencyMs ?? 0 });

  const vars: Record<string, string | undefined> = {
    ...(recraft && { RECRAFT_API_KEY: recraft.apiKey, RECRAFT_API_URL: recraft.url, RECRAFT_IMAGE_HOSTS: recraft.imageHost }),
    ...(anthropic && { ANTHROPIC_API_KEY: anthropic.apiKey, ANTHROPIC_BASE_URL: anthropic.url, STORY_MODEL: "claude-demo-fake" }),
    ...options.env,
  };
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  setEnv(vars);
  const restoreConsole = options.backendLog ? captureConsole(options.backendLog) : () => {};

  const t = newBackend(options.modules);
  return {
    t,
    admin: t.withIdentity(ADMIN_IDENTITY),
    recraft,
    anthropic,
    env: maskedEnv(),
    async close() {
      await Promise.all([recraft?.close(), anthropic?.close()]);
      restoreConsole();
      setEnv(saved);
    },
  };
}

function setEnv(vars: Record<string, string | undefined>) {
  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}

const CONVEX_ENV = /^(RECRAFT_|PORTRAIT_|ANTHROPIC_|STORY_)/;

// A report names which key is in use, never any of its characters.
const keyLabel = (key: string) => ([FAKE_RECRAFT_KEY, FAKE_ANTHROPIC_KEY].includes(key) ? "the fake's key" : "set (hidden)");

function maskedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env)
      .filter(([name, value]) => CONVEX_ENV.test(name) && value !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => [name, name.endsWith("_KEY") ? keyLabel(value!) : value!]),
  );
}

/** The backend runs in this process, so its logs arrive through the global console. */
function captureConsole(sink: (level: string, line: string) => void): () => void {
  const levels = ["log", "info", "warn", "error", "debug"] as const;
  const original = levels.map((level) => console[level]);
  for (const level of levels) {
    console[level] = (...args: unknown[]) => sink(level, args.map((a) => (typeof a === "string" ? a : String(a))).join(" "));
  }
  return () => levels.forEach((level, i) => (console[level] = original[i]));
}

export async function jobCounts(t: Backend): Promise<Counts> {
  return t.run((ctx) => readCounts(ctx));
}

export interface FailedAttempt {
  jobId: string;
  slug: string;
  attempt: number;
  code: string;
  httpStatus?: number;
  message: string;
  /** Whether the job went back to the queue for another attempt. */
  retrying: boolean;
}

/** Every failed attempt since `since` (from the event log), newest last. */
export async function failedAttempts(t: Backend, since: number): Promise<FailedAttempt[]> {
  return t.run(async (ctx) => {
    const events = await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_to", (q) => q.eq("to", "failed").gte("at", since))
      .collect();
    const out: FailedAttempt[] = [];
    for (const event of events) {
      const job = await ctx.db.get(event.jobId);
      const story = await ctx.db.get(event.storyId);
      out.push({
        jobId: event.jobId,
        slug: story?.slug ?? "(deleted story)",
        attempt: event.attempt,
        code: event.error?.code ?? "unknown",
        httpStatus: event.error?.httpStatus,
        message: event.error?.message ?? "",
        retrying: !!job && job.attempt > event.attempt,
      });
    }
    return out;
  });
}

export interface Progress {
  requested: number;
  written: number;
  storyFailures: { index: number; stage: string; message: string }[];
  /** Job counts of this run (the table's counts minus those when the run began). */
  counts: Counts;
  failures: FailedAttempt[];
  elapsedMs: number;
  done: boolean;
}

export interface GenerateOptions {
  pollMs?: number;
  /** Give up waiting for jobs after this long. */
  timeoutMs?: number;
  hint?: (index: number) => string | undefined;
}

export interface GenerateResult {
  storyIds: Id<"stories">[];
  progress: Progress;
  timedOut: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Generates `n` stories one after another through `internal.stories.generateStory`,
 * exactly as production does (the dispatcher runs the portraits meanwhile), then
 * waits until every job is stored or failed. Reports progress every `pollMs`.
 */
export async function generateStories(
  stack: Pick<DemoStack, "t">,
  n: number,
  onProgress: (progress: Progress) => void = () => {},
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const { t } = stack;
  const started = Date.now();
  const baseline = await jobCounts(t);
  const storyIds: Id<"stories">[] = [];
  const storyFailures: Progress["storyFailures"] = [];
  let writing = true;

  const writer = (async () => {
    try {
      for (let i = 0; i < n; i++) {
        const result = await t.action(internal.stories.generateStory, { hint: options.hint?.(i) });
        if (result.status === "inserted") storyIds.push(result.storyId);
        else storyFailures.push({ index: i, stage: result.stage, message: result.message });
      }
    } finally {
      writing = false;
    }
  })();

  const snapshot = async (): Promise<Progress> => {
    const now = await jobCounts(t);
    const counts = Object.fromEntries(Object.entries(now).map(([s, c]) => [s, c - baseline[s as JobStatus]])) as Counts;
    const live = LIVE.reduce((sum, s) => sum + counts[s], 0);
    return {
      requested: n,
      written: storyIds.length,
      storyFailures: [...storyFailures],
      counts,
      failures: await failedAttempts(t, started),
      elapsedMs: Date.now() - started,
      done: !writing && live === 0,
    };
  };

  const deadline = started + (options.timeoutMs ?? 10 * 60_000);
  let progress = await snapshot();
  onProgress(progress);
  while (!progress.done && Date.now() < deadline) {
    await sleep(options.pollMs ?? 200);
    progress = await snapshot();
    onProgress(progress);
  }
  await writer;
  return { storyIds, progress, timedOut: !progress.done };
}
