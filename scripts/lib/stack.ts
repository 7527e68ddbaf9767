/**
 * The demo stack: the embedded backend, the fake Recraft, Anthropic and TinyPNG servers
 * on 127.0.0.1 (or the real services when their keys are set), and the Convex
 * environment variables pointing at them. Reused by the demo, the bench, the
 * admin UI's bridge server and the browser tests.
 */
import { internal } from "../../convex/_generated/api.js";
import type { Id } from "../../convex/_generated/dataModel.js";
import { readCounts } from "../../convex/lib/jobs.ts";
import type { JobStatus, StoryRunStatus } from "../../convex/validators.ts";
import { startAnthropicServer, type FakeAnthropic, type StartAnthropicServerOptions } from "../fakes/anthropicServer.ts";
import { startRecraftServer, type FakeRecraft, type RecraftServerOptions } from "../fakes/recraftServer.ts";
import { startTinifyServer, type FakeTinify, type StartTinifyServerOptions } from "../fakes/tinifyServer.ts";
import { ADMIN_IDENTITY, convexModules, newBackend, type Backend, type Modules } from "./backend.ts";
import { convexAuthEnv, convexAuthModules, convexAuthSchema } from "./convexAuth.ts";
import { claudeFailRate, DEMO_DOWNLOAD_LATENCY_MS, demoLatency, failRatePicker, painter } from "./faults.ts";
import { sleep } from "./wait.ts";

const FAKE_RECRAFT_KEY = "rk-demo-fake-recraft-key";
const FAKE_ANTHROPIC_KEY = "sk-ant-demo-fake-anthropic-key";
const FAKE_TINIFY_KEY = "tinify-demo-fake-key";

export type Counts = Record<JobStatus, number>;
export const LIVE: JobStatus[] = ["pending", "requested", "downloaded"];

export interface DemoStackOptions {
  /** Use the real service for a provider (the demo does when its key is in the environment). */
  real?: { recraft?: boolean; anthropic?: boolean; tinify?: boolean };
  /** Share of generation requests the fake Recraft fails (0..1). */
  failRate?: number;
  /** Share of story attempts the fake Claude fails with 529/500 (0..1). */
  storyFailRate?: number;
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
  /**
   * Also run Convex Auth (Password provider) as `convex/auth.ts`, with its
   * tables and a fresh key pair, as a deployment that signs admins in with it.
   */
  convexAuth?: boolean;
}

/** A stack whose recraft/anthropic are undefined when the real service is used. */
export interface DemoStack extends Stack {
  /** The Convex modules the backend runs (the bridge serves their public functions). */
  modules: Modules;
  /** The backend as the demo admin, for the admin functions. */
  admin: ReturnType<Backend["withIdentity"]>;
  /** The Convex environment the stack set, secrets masked. */
  env: Record<string, string>;
}

export interface StackOptions {
  /** The fake Recraft server's options; false: no fake (the real service, from the environment). */
  recraft?: RecraftServerOptions | false;
  /** The fake Anthropic server's options; false: no fake. */
  anthropic?: StartAnthropicServerOptions | false;
  /** The fake TinyPNG server's options; false: no fake. Its key is set only when `tinifyKey` is (compression is opt-in). */
  tinify?: StartTinifyServerOptions | false;
  /** Set TINIFY_API_KEY to the fake's key, so every portrait is compressed. */
  tinifyKey?: boolean;
  /** Convex environment variables, set after those pointing at the fakes (undefined deletes one). */
  env?: Record<string, string | undefined>;
  /** The Convex modules to run; default: convex/ as it is. */
  modules?: Modules;
  /** Tables to add to the project's schema (the Convex Auth stack adds `authTables`). */
  schema?: Parameters<typeof newBackend>[1];
  /** Where the backend's console output goes; default: the console. */
  backendLog?: (level: string, line: string) => void;
  /** Enforce Convex's limits on each transaction (32,000 documents read, 16,000 written, ...): a function past one throws. */
  transactionLimits?: boolean;
}

export interface Stack<
  R extends FakeRecraft | undefined = FakeRecraft | undefined,
  A extends FakeAnthropic | undefined = FakeAnthropic | undefined,
  T extends FakeTinify | undefined = FakeTinify | undefined,
> {
  t: Backend;
  recraft: R;
  anthropic: A;
  tinify: T;
  /** Sets Convex environment variables (undefined deletes one); close() restores them all. */
  setEnv(vars: Record<string, string | undefined>): void;
  close(): Promise<void>;
}

/**
 * The one stack builder (tests, demo, bench, the admin bridge): the project's own
 * Convex functions on the embedded backend, the loopback fakes, and the Convex
 * environment variables pointing at them, all undone by close().
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const recraft = options.recraft === false ? undefined : await startRecraftServer(options.recraft);
  const anthropic = options.anthropic === false ? undefined : await startAnthropicServer(options.anthropic);
  const tinify = options.tinify === false ? undefined : await startTinifyServer(options.tinify);
  const saved = new Map<string, string | undefined>();
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(vars)) {
      if (!saved.has(name)) saved.set(name, process.env[name]);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  setEnv({
    ...(recraft && { RECRAFT_API_KEY: recraft.apiKey, RECRAFT_API_URL: recraft.url, RECRAFT_IMAGE_HOSTS: recraft.imageHost }),
    ...(anthropic && { ANTHROPIC_API_KEY: anthropic.apiKey, ANTHROPIC_BASE_URL: anthropic.url }),
    ...(tinify && { TINIFY_API_URL: tinify.url, TINIFY_API_KEY: options.tinifyKey ? tinify.apiKey : undefined }),
    ...options.env,
  });
  const restoreConsole = options.backendLog ? captureConsole(options.backendLog) : () => {};
  return {
    t: newBackend(options.modules, options.schema, { transactionLimits: options.transactionLimits }),
    recraft,
    anthropic,
    tinify,
    setEnv,
    async close() {
      await Promise.all([recraft?.close(), anthropic?.close(), tinify?.close()]);
      restoreConsole();
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    },
  };
}

/** The demo's stack: its painter, latencies and fault rates on the fakes, and the demo admin. */
export async function startDemoStack(options: DemoStackOptions = {}): Promise<DemoStack> {
  const modules = { ...(options.modules ?? convexModules()), ...(options.convexAuth && convexAuthModules()) };
  const stack = await startStack({
    recraft: options.real?.recraft
      ? false
      : {
          apiKey: FAKE_RECRAFT_KEY,
          paint: painter(options.portraitSize ?? 256),
          latencyMs: demoLatency,
          downloadLatencyMs: DEMO_DOWNLOAD_LATENCY_MS,
          fault: failRatePicker(options.failRate ?? 0),
          ...options.recraft,
        },
    anthropic: options.real?.anthropic
      ? false
      : { apiKey: FAKE_ANTHROPIC_KEY, latencyMs: options.storyLatencyMs ?? 0, behavior: claudeFailRate(options.storyFailRate ?? 0) },
    tinify: options.real?.tinify ? false : { apiKey: FAKE_TINIFY_KEY },
    tinifyKey: !options.real?.tinify,
    // The fake answers fast, so a retry need not wait the production five minutes.
    env: {
      ...(!options.real?.anthropic && { STORY_RETRY_DELAY_MS: "1000" }),
      ...(options.convexAuth && convexAuthEnv()),
      ...options.env,
    },
    modules,
    ...(options.convexAuth && { schema: convexAuthSchema }),
    backendLog: options.backendLog,
  });
  return { ...stack, modules, admin: stack.t.withIdentity(ADMIN_IDENTITY), env: maskedEnv() };
}

const CONVEX_ENV = /^(RECRAFT_|PORTRAIT_|ANTHROPIC_|CLAUDE_|TINIFY_|STORY_)/;

// A report names which key is in use, never any of its characters.
const keyLabel = (key: string) =>
  [FAKE_RECRAFT_KEY, FAKE_ANTHROPIC_KEY, FAKE_TINIFY_KEY].includes(key) ? "the fake's key" : "set (hidden)";

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
  return () => levels.forEach((level, i) => (console[level] = original[i]!));
}

export async function jobCounts(t: Backend): Promise<Counts> {
  return t.run((ctx) => readCounts(ctx));
}

interface FailedAttempt {
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
async function failedAttempts(t: Backend, since: number): Promise<FailedAttempt[]> {
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

type RunCounts = Record<StoryRunStatus, number>;
const RUN_STATUSES: StoryRunStatus[] = ["pending", "writing", "repairing", "inserted", "failed"];

interface StoryAttemptFailure {
  /** 0-based position of the run among those requested. */
  index: number;
  attempt: number;
  code: string;
  httpStatus?: number;
  message: string;
  retrying: boolean;
}

export interface Progress {
  requested: number;
  written: number;
  /** Story runs that ended failed. */
  storyFailures: { index: number; stage: string; code: string; message: string }[];
  /** Story runs per status. */
  runs: RunCounts;
  /** Every failed story attempt (retried or final), from the runs' events. */
  storyAttemptFailures: StoryAttemptFailure[];
  /** Job counts of this run (the table's counts minus those when the run began). */
  counts: Counts;
  failures: FailedAttempt[];
  elapsedMs: number;
  done: boolean;
}

export interface GenerateOptions {
  pollMs?: number;
  /** Give up waiting for runs and jobs after this long. */
  timeoutMs?: number;
  hint?: (index: number) => string | undefined;
}

export interface GenerateResult {
  storyIds: Id<"stories">[];
  runIds: Id<"storyRuns">[];
  progress: Progress;
  timedOut: boolean;
}

/**
 * Starts `n` story runs one after another through `internal.storyRuns.generateStory`,
 * exactly as the daily cron and the admin do (the portrait jobs run meanwhile),
 * then waits until every run and every job has ended. Reports
 * progress every `pollMs`.
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
  const runIds: Id<"storyRuns">[] = [];
  // One run at a time, as a daily cron would: each request names the stories before it.
  const writer = (async () => {
    for (let i = 0; i < n; i++) {
      const runId = await t.mutation(internal.storyRuns.generateStory, { hint: options.hint?.(i) });
      runIds.push(runId);
      while (!["inserted", "failed"].includes((await t.run((ctx) => ctx.db.get(runId)))!.status)) await sleep(20);
    }
  })();
  let writerError: unknown;
  writer.catch((error) => (writerError = error));

  const readRuns = () =>
    t.run(async (ctx) =>
      Promise.all(
        runIds.map(async (runId) => ({
          run: (await ctx.db.get(runId))!,
          failures: await ctx.db
            .query("storyRunEvents")
            .withIndex("by_run", (q) => q.eq("runId", runId))
            .filter((q) => q.eq(q.field("to"), "failed"))
            .collect(),
        })),
      ),
    );

  const snapshot = async (): Promise<Progress> => {
    const now = await jobCounts(t);
    const counts = Object.fromEntries(Object.entries(now).map(([s, c]) => [s, c - baseline[s as JobStatus]])) as Counts;
    const live = LIVE.reduce((sum, s) => sum + counts[s], 0);
    const runs = await readRuns();
    const runCounts = Object.fromEntries(RUN_STATUSES.map((s) => [s, runs.filter(({ run }) => run.status === s).length])) as RunCounts;
    return {
      requested: n,
      written: runCounts.inserted,
      storyFailures: runs.flatMap(({ run }, index) =>
        run.status === "failed"
          ? [{ index, stage: run.error?.stage ?? "?", code: run.error?.code ?? "?", message: run.error?.message ?? "" }]
          : [],
      ),
      runs: runCounts,
      storyAttemptFailures: runs.flatMap(({ run, failures }, index) =>
        failures.map((event) => ({
          index,
          attempt: event.attempt,
          code: event.error?.code ?? "unknown",
          httpStatus: event.error?.httpStatus,
          message: event.error?.message ?? "",
          retrying: run.attempt > event.attempt,
        })),
      ),
      counts,
      failures: await failedAttempts(t, started),
      elapsedMs: Date.now() - started,
      done: runCounts.inserted + runCounts.failed === n && live === 0,
    };
  };

  const deadline = started + (options.timeoutMs ?? 10 * 60_000);
  let progress = await snapshot();
  onProgress(progress);
  while (!progress.done && Date.now() < deadline) {
    if (writerError) throw writerError;
    await sleep(options.pollMs ?? 200);
    progress = await snapshot();
    onProgress(progress);
  }
  if (progress.done) await writer;
  const storyIds = (await readRuns()).flatMap(({ run }) => (run.storyId ? [run.storyId] : []));
  return { storyIds, runIds, progress, timedOut: !progress.done };
}
