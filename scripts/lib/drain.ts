/**
 * The drain figure (issue 15's "Done when"): the time to drain a backlog as a
 * user feels it, against the ideal schedule, with starts on time and with a
 * lagging scheduler (scripts/lib/lag.ts).
 *
 * The ideal schedule: every request as early as both windows allow (the
 * minute's burst included, lib/pacing.ts with no margin), each taking the
 * latency the fake gave that request; its drain is the latest ideal start plus
 * latency. The measured drain runs from the inserts to the last job stored.
 */
import { reserveStart } from "../../convex/lib/pacing.ts";
import { benchStack, insertStory, live, waitForCounts } from "./benchStack.ts";
import { lagScheduler, randomLag, type LagOptions } from "./lag.ts";

export type DrainScenario = {
  name: string;
  jobs: number;
  /** Window lengths (1 s / 60 s real; the quick bench scales them) and limits. */
  secondMs: number;
  minuteMs: number;
  perSecond: number;
  perMinute: number;
  /** Fake generation latency range, ms. */
  latencyMs: [number, number];
  lag?: LagOptions;
  env?: Record<string, string | undefined>;
};

export type DrainResult = {
  scenario: string;
  drainMs: number;
  idealMs: number;
  stored: number;
  jobs: number;
  overSecond: number;
  overMinute: number;
  actionsWithoutRequest: number;
  deferred: number;
  maxRunning?: number;
};

export async function drain(s: DrainScenario): Promise<DrainResult> {
  const latencies = new Map<string, number>();
  const latencyOf = (prompt: string) => {
    if (!latencies.has(prompt)) latencies.set(prompt, s.latencyMs[0] + Math.random() * (s.latencyMs[1] - s.latencyMs[0]));
    return latencies.get(prompt)!;
  };
  let deferred = 0;
  const stack = await benchStack({
    recraft: { latencyMs: latencyOf, downloadLatencyMs: 0 },
    backendLog: (_level, line) => void (line.includes('"portrait.start_deferred"') && deferred++),
    env: {
      PORTRAIT_RATE_SECOND_MS: String(s.secondMs),
      PORTRAIT_RATE_MINUTE_MS: String(s.minuteMs),
      PORTRAIT_MAX_PER_SECOND: String(s.perSecond),
      PORTRAIT_MAX_PER_MINUTE: String(s.perMinute),
      PORTRAIT_START_TOLERANCE_MS: undefined,
      PORTRAIT_MAX_CONCURRENCY: undefined,
      ...s.env,
    },
  });
  const lag = s.lag ? lagScheduler(s.lag) : undefined;
  const { t } = stack;
  try {
    const started = Date.now();
    await Promise.all(Array.from({ length: s.jobs }, (_, i) => insertStory(t, i)));
    await waitForCounts(t, (c) => live(c) === 0, 250, 20 * 60_000);
    const jobs = await t.run((ctx) => ctx.db.query("portraitJobs").collect());
    const stored = jobs.filter((j) => j.status === "stored");
    const drainMs = Math.max(...stored.map((j) => j.updatedAt)) - started;
    // The ideal: the same requests, in the order the fake saw them, each at its earliest start.
    const config = {
      secondMs: s.secondMs,
      minuteMs: s.minuteMs,
      maxPerSecond: s.perSecond,
      maxPerMinute: s.perMinute,
      startToleranceMs: 0,
    };
    let log: number[] = [];
    let idealMs = 0;
    for (const request of stack.recraft!.requests) {
      const reserved = reserveStart(log, 0, config);
      log = reserved.log;
      idealMs = Math.max(idealMs, reserved.start + latencyOf(request.prompt ?? ""));
    }
    const actions = await t.run(
      async (ctx) =>
        (await ctx.db.system.query("_scheduled_functions").collect()).filter((fn) => fn.name.includes("generatePatientPortrait")).length,
    );
    return {
      scenario: s.name,
      drainMs,
      idealMs,
      stored: stored.length,
      jobs: s.jobs,
      overSecond: stack.recraft!.startsOverLimit(s.secondMs, s.perSecond),
      overMinute: stack.recraft!.startsOverLimit(s.minuteMs, s.perMinute),
      actionsWithoutRequest: actions - stack.recraft!.requests.length,
      deferred,
      maxRunning: lag?.stats.maxRunning,
    };
  } finally {
    lag?.restore();
    await stack.close();
  }
}

/** The scenarios: real windows (scale 1) or shorter ones for a quick run (scale 10: windows and latencies ÷ 10). */
export function drainScenarios(scale: number, jobs: number, proCeiling: string): DrainScenario[] {
  const real = {
    secondMs: 1_000 / scale,
    minuteMs: 60_000 / scale,
    perSecond: 5,
    perMinute: 100,
    latencyMs: [5_000 / scale, 15_000 / scale] as [number, number],
  };
  const margin = { PORTRAIT_START_TOLERANCE_MS: String(Math.max(10, 100 / scale)) };
  return [
    { name: `on time, ceiling ${proCeiling} (Professional)`, jobs, ...real, env: { ...margin, PORTRAIT_MAX_CONCURRENCY: proCeiling } },
    {
      name: `0–1 s late, 1 in 20 another 3 s, ceiling ${proCeiling}`,
      jobs,
      ...real,
      env: { ...margin, PORTRAIT_MAX_CONCURRENCY: proCeiling },
      lag: { delayMs: randomLag({ maxMs: 1_000 / scale, spikeEvery: 20, spikeMs: 3_000 / scale }) },
    },
    {
      name: "on time, default ceiling (6) on a Free plan's 8 places",
      jobs,
      ...real,
      env: margin,
      lag: { delayMs: () => 0, parallelism: 8 },
    },
    {
      name: "the second binds: 14 requests at 4/s",
      jobs: 14,
      ...real,
      perSecond: 4,
      perMinute: 8_192,
      latencyMs: [0, 0],
      env: { ...margin, PORTRAIT_MAX_CONCURRENCY: proCeiling },
    },
  ];
}

export function drainFigureRow(results: DrainResult[], scale: number) {
  const pct = (r: DrainResult) => (100 * r.idealMs) / r.drainMs;
  const s = (ms: number) => `${((ms * scale) / 1000).toFixed(1)} s`;
  const table = [
    "| scheduled starts | drain vs ideal | share | stored | over 1 s / 1 min | actions without a request | deferred starts |",
    "|---|---|---|---|---|---|---|",
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${s(r.drainMs)} vs ${s(r.idealMs)} | ${pct(r).toFixed(0)}% | ${r.stored}/${r.jobs} | ${r.overSecond} / ${r.overMinute} | ${r.actionsWithoutRequest} | ${r.deferred} |`,
    ),
  ].join("\n");
  const [onTime, late, , second] = results;
  const overShare = (r: DrainResult) => (r.overSecond + r.overMinute) / r.jobs;
  const met =
    onTime.drainMs <= 1.11 * onTime.idealMs &&
    late.drainMs <= 1.25 * late.idealMs &&
    results.every((r) => r.stored === r.jobs && overShare(r) <= 0.01 && r.actionsWithoutRequest === 0) &&
    second.drainMs * scale <= 6_000;
  return { table, met, measured: results.map((r) => `${r.scenario}: ${pct(r).toFixed(0)}%`).join("; ") };
}
