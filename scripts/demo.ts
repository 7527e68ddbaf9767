/**
 * `npm run demo`: the whole system on this machine, without a Convex account,
 * keys or network. The project's Convex functions run on an embedded backend;
 * Claude and Recraft are loopback fakes unless their keys are set.
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fractionFlag, intFlag, isEntryPoint, parseFlags, runCli, UsageError, type Io } from "./lib/cli.ts";
import { progressView } from "./lib/progress.ts";
import { summarize, writeOutputs } from "./lib/report.ts";
import { readRunSnapshot, readSnapshot } from "./lib/snapshot.ts";
import { serveAdmin } from "./lib/bridge.ts";
import { generateStories, startDemoStack, type DemoStack } from "./lib/stack.ts";
import { formatBytes, formatMs } from "./lib/stats.ts";
import { DEFAULT_STORY_MODEL } from "../convex/lib/config.ts";
import { internal } from "../convex/_generated/api.js";

export const USAGE = `Usage: npm run demo -- [options]

Writes case files with Claude, paints each patient's portrait with Recraft (at
most PORTRAIT_MAX_CONCURRENCY=4 in flight), compresses it with TinyPNG, and
writes the portraits and an HTML report. Runs the project's Convex functions on
an embedded backend (convex-test) in this process; Claude, Recraft and TinyPNG
are local fakes unless ANTHROPIC_API_KEY (or CLAUDE_API_KEY) / RECRAFT_API_KEY /
TINIFY_API_KEY are set, in which case that real service is used.

Options:
  --stories N        case files to generate (default 5)
  --fail-rate R      share of image generation requests the fake Recraft fails,
                     0..1 (default 0): 429 with Retry-After, 500, 503, image 404,
                     wrong content type. When R > 0 the demo sets
                     PORTRAIT_MAX_ATTEMPTS=3 and PORTRAIT_RETRY_INITIAL_MS=500
                     so transient failures are retried. The fake Claude also
                     fails min(R, 0.5) of story attempts with 529 or 500; each
                     story run retries after STORY_RETRY_DELAY_MS (1 s in the
                     demo) and still ends with its case file
  --max-attempts N   PORTRAIT_MAX_ATTEMPTS (default 1, or 3 with --fail-rate)
  --out DIR          output directory (default out): DIR/portraits/<slug>.png,
                     DIR/report.html, DIR/backend.log
  --serve            serve the admin console (a local bridge to the embedded
                     backend) while generating, and keep the stack running
                     afterwards (Ctrl-C to stop)
  --port N           the admin console's port with --serve (default 5178)
  -h, --help         show this help

Exit code: 0 when every portrait job ended (stored or failed: failures are
shown, not fatal), 1 when a story run failed or the demo broke,
2 for a bad option.
`;

interface DemoOptions {
  stories: number;
  failRate: number;
  maxAttempts: number;
  out: string;
  serve: boolean;
  port: number;
}

export function parseDemoArgs(argv: string[]): DemoOptions | "help" {
  const flags = parseFlags(argv, {
    stories: { type: "string" },
    "fail-rate": { type: "string" },
    "max-attempts": { type: "string" },
    out: { type: "string" },
    serve: { type: "boolean" },
    port: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (flags.help) return "help";
  const failRate = fractionFlag("fail-rate", flags["fail-rate"], 0);
  if (flags.out !== undefined && flags.out.trim() === "") throw new UsageError("--out needs a directory");
  return {
    stories: intFlag("stories", flags.stories, 5, 1, 200),
    failRate,
    maxAttempts: intFlag("max-attempts", flags["max-attempts"], failRate > 0 ? 3 : 1, 1, 10),
    out: flags.out ?? "out",
    serve: !!flags.serve,
    port: intFlag("port", flags.port, 5178, 1, 65535),
  };
}

export async function main(argv: string[], io: Io): Promise<number> {
  const say = (line = "") => io.stdout.write(`${line}\n`);
  let options: DemoOptions | "help";
  try {
    options = parseDemoArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`demo: ${error.message} (run with --help for usage)\n`);
    return 2;
  }
  if (options === "help") {
    say(USAGE);
    return 0;
  }
  const real = {
    recraft: !!process.env.RECRAFT_API_KEY?.trim(),
    anthropic: !!(process.env.ANTHROPIC_API_KEY?.trim() || process.env.CLAUDE_API_KEY?.trim()),
    tinify: !!process.env.TINIFY_API_KEY?.trim(),
  };
  if (real.recraft && options.failRate > 0) {
    io.stderr.write("demo: --fail-rate needs the fake Recraft server; unset RECRAFT_API_KEY to use it\n");
    return 2;
  }

  await mkdir(options.out, { recursive: true });
  const logPath = join(options.out, "backend.log");
  const log = createWriteStream(logPath);
  const env: Record<string, string> = { PORTRAIT_MAX_ATTEMPTS: String(options.maxAttempts) };
  if (options.failRate > 0) Object.assign(env, { PORTRAIT_RETRY_INITIAL_MS: "500", PORTRAIT_RETRY_MAX_MS: "4000" });

  let stack: DemoStack | undefined;
  let admin: AdminServer | undefined;
  let snapshotTimer: ReturnType<typeof setInterval> | undefined;
  try {
    stack = await startDemoStack({
      real,
      failRate: options.failRate,
      // At most every other attempt, so every run ends with its story within STORY_MAX_ATTEMPTS (3).
      storyFailRate: Math.min(options.failRate, 0.5),
      storyLatencyMs: 300,
      env,
      backendLog: (level, line) => log.write(`${level === "log" ? "" : `[${level}] `}${line}\n`),
    });
    say("Hollowell Asylum · case files demo");
    say("  backend    the project's Convex functions on an embedded backend (convex-test), in this process");
    say(
      `  stories    ${stack.anthropic ? `fake Claude at ${stack.anthropic.url} (set ANTHROPIC_API_KEY for the real one)` : `Claude (${stack.env.STORY_MODEL ?? DEFAULT_STORY_MODEL})`}, one story run each`,
    );
    say(
      `  portraits  ${stack.recraft ? `fake Recraft at ${stack.recraft.url}, 1–3 s per portrait (set RECRAFT_API_KEY for the real one)` : `Recraft at ${stack.env.RECRAFT_API_URL ?? "https://external.api.recraft.ai/v1"}`}`,
    );
    say(
      `  compress   ${stack.tinify ? `fake TinyPNG at ${stack.tinify.url} (set TINIFY_API_KEY for the real one)` : `TinyPNG at ${stack.env.TINIFY_API_URL ?? "https://api.tinify.com"}`}, fit to PORTRAIT_MAX_SIDE=${stack.env.PORTRAIT_MAX_SIDE ?? 1024}`,
    );
    say(
      `  queue      at most ${stack.env.PORTRAIT_MAX_CONCURRENCY ?? 4} portraits in flight; PORTRAIT_MAX_ATTEMPTS=${options.maxAttempts}`,
    );
    if (options.failRate > 0) {
      say(
        `  faults     --fail-rate ${options.failRate}: that share of generation requests fail; transient ones retry (PORTRAIT_RETRY_INITIAL_MS=500)`,
      );
      if (stack.anthropic)
        say(
          `             and ${Math.min(options.failRate, 0.5)} of Claude attempts fail with 529/500; the story run retries (STORY_RETRY_DELAY_MS=${stack.env.STORY_RETRY_DELAY_MS})`,
        );
    }
    say(`  logs       ${logPath}`);
    if (options.serve) {
      admin = await startAdmin(stack, options.port, io);
      if (!admin) return 2;
      say(`  admin      ${admin.url}/  (local bridge; ?as=guest shows what a non-admin sees)`);
      // The embedded backend runs no crons: take the console's queue snapshots here, more often than a deployment's 5 minutes.
      const backend = stack.t;
      const takeSnapshot = () => void backend.mutation(internal.queueMetrics.snapshot, {}).catch(() => {});
      takeSnapshot();
      snapshotTimer = setInterval(takeSnapshot, 30_000);
    }
    say();

    const view = progressView(io.stdout, io.isTTY);
    const result = await generateStories(stack, options.stories, (p) => view.update(p), { pollMs: io.isTTY ? 150 : 250 });
    view.finish(result.progress);

    const snapshots = await readSnapshot(stack.t);
    const storyRuns = await readRunSnapshot(stack.t);
    const outputs = await writeOutputs(snapshots, options.out, {
      generatedAt: new Date(),
      env: stack.env,
      storyRuns,
      notes:
        options.failRate > 0 ? [`--fail-rate ${options.failRate}: the fake Recraft server failed that share of generation requests.`] : [],
    });
    const summary = summarize(snapshots);
    say();
    const retried = storyRuns.filter(({ run }) => run.attempt > 1).length;
    say(
      `story runs ${Object.entries(result.progress.runs)
        .map(([s, n]) => `${s} ${n}`)
        .join(" · ")}${retried ? ` (${retried} retried)` : ""}`,
    );
    for (const { run } of storyRuns.filter(({ run }) => run.status === "failed"))
      say(`failed     story run ${run._id}: ${run.error?.code} ${run.error?.message ?? ""}`);
    say(
      `jobs       ${Object.entries(summary.counts)
        .map(([s, n]) => `${s} ${n}`)
        .join(" · ")}`,
    );
    for (const s of summary.steps)
      say(
        `step       ${s.step.padEnd(24)} n=${String(s.n).padEnd(3)} p50 ${formatMs(s.p50).padStart(7)}  p95 ${formatMs(s.p95).padStart(7)}`,
      );
    for (const { story, job } of snapshots.filter((s) => s.job?.status === "failed")) {
      say(
        `failed     ${story.slug}: ${job!.error?.code}${job!.error?.httpStatus ? ` (HTTP ${job!.error.httpStatus})` : ""} ${job!.error?.message ?? ""}`,
      );
    }
    for (const { story, events } of snapshots) {
      const compression = events.find((e) => e.to === "downloaded" && e.details?.compression)?.details?.compression;
      if (!compression) continue;
      const sizes =
        compression.compressedBytes === undefined
          ? ""
          : ` ${formatBytes(compression.originalBytes)} → ${formatBytes(compression.compressedBytes)}`;
      say(`compressed ${story.slug}: ${compression.outcome}${sizes}${compression.reason ? ` (${compression.reason})` : ""}`);
    }
    say(`portraits  ${outputs.portraits.length} written to ${join(options.out, "portraits")}`);
    say(`report     ${outputs.report}`);

    if (result.timedOut) {
      io.stderr.write("demo: gave up waiting for the portrait jobs to finish\n");
      return 1;
    }
    if (result.progress.storyFailures.length > 0) {
      io.stderr.write(`demo: ${result.progress.storyFailures.length} case file(s) could not be generated (see above and ${logPath})\n`);
      return 1;
    }
    if (options.serve) await serve(stack, say);
    return 0;
  } finally {
    clearInterval(snapshotTimer);
    await admin?.close();
    await stack?.close();
    await new Promise((resolve) => log.end(resolve));
  }
}

type AdminServer = Awaited<ReturnType<typeof serveAdmin>>;

async function startAdmin(stack: DemoStack, port: number, io: Io): Promise<AdminServer | undefined> {
  try {
    return await serveAdmin(stack, { port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    io.stderr.write(`demo: port ${port} is busy; pass --port N to serve the admin console elsewhere\n`);
    return undefined;
  }
}

async function serve(stack: DemoStack, say: (line?: string) => void) {
  say();
  say("serving: the stack stays up");
  if (stack.recraft) say(`  fake Recraft  ${stack.recraft.url}  (images from ${stack.recraft.origin}/images/)`);
  if (stack.anthropic) say(`  fake Claude   ${stack.anthropic.url}/v1/messages`);
  if (stack.tinify) say(`  fake TinyPNG  ${stack.tinify.url}/shrink`);
  say("press Ctrl-C to stop");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
}

if (isEntryPoint(import.meta.url)) runCli("demo", main);
