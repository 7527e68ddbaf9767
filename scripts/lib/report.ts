/**
 * The demo's outputs: each stored portrait as out/portraits/<slug>.png and a
 * self-contained out/report.html (inline CSS, portraits as data: URLs).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobStatus } from "../../convex/validators.ts";
import { stepsOf, type RunSnapshot, type StorySnapshot } from "./snapshot.ts";
import { formatBytes, formatMs, percentile } from "./stats.ts";

const STATUSES: JobStatus[] = ["pending", "requested", "downloaded", "stored", "failed"];

export interface Summary {
  counts: Record<JobStatus, number>;
  steps: { step: string; n: number; p50: number; p95: number }[];
}

export function summarize(snapshots: StorySnapshot[]): Summary {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  const byStep = new Map<string, number[]>();
  for (const { job, events } of snapshots) {
    if (job) counts[job.status] += 1;
    for (const step of stepsOf(events).slice(1)) {
      const key = `${step.from ?? "new"} → ${step.to}`;
      byStep.set(key, [...(byStep.get(key) ?? []), step.stepMs]);
    }
  }
  const steps = [...byStep].map(([step, ms]) => ({ step, n: ms.length, p50: percentile(ms, 50), p95: percentile(ms, 95) }));
  return { counts, steps };
}

/** Escapes text for HTML element content and double-quoted attributes. */
export const escapeHtml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export async function writeOutputs(
  snapshots: StorySnapshot[],
  outDir: string,
  meta: ReportMeta,
): Promise<{ portraits: string[]; report: string }> {
  const dir = join(outDir, "portraits");
  await mkdir(dir, { recursive: true });
  const portraits: string[] = [];
  for (const { story, png } of snapshots) {
    if (!png) continue;
    const file = join(dir, `${story.slug}.png`);
    await writeFile(file, png);
    portraits.push(file);
  }
  const report = join(outDir, "report.html");
  await writeFile(report, renderReport(snapshots, meta));
  return { portraits, report };
}

export interface ReportMeta {
  generatedAt: Date;
  /** Convex environment, secrets masked. */
  env: Record<string, string>;
  /** The story runs that wrote the case files (and any that failed). */
  storyRuns?: RunSnapshot[];
  notes?: string[];
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

function renderReport(snapshots: StorySnapshot[], meta: ReportMeta): string {
  const summary = summarize(snapshots);
  const allAt = snapshots.flatMap((s) => s.events.map((e) => e.at));
  const t0 = allAt.length ? Math.min(...allAt) : 0;
  const span = allAt.length ? Math.max(1, Math.max(...allAt) - t0) : 1;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Case files — portrait pipeline report</title>
<style>${CSS}</style></head>
<body>
<header><h1>Hollowell Asylum · case files</h1>
<p class="sub">Portrait pipeline report · ${escapeHtml(meta.generatedAt.toISOString())} · ${snapshots.length} case files</p>
${(meta.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join("\n")}
</header>
<section class="summary">
<h2>Summary</h2>
<div class="tables">
<table><caption>Jobs per status</caption><tr><th>status</th><th>jobs</th></tr>
${STATUSES.map((s) => `<tr><td><span class="dot s-${s}"></span>${s}</td><td class="num">${summary.counts[s]}</td></tr>`).join("\n")}
</table>
<table><caption>Step durations (time between events)</caption><tr><th>step</th><th>n</th><th>p50</th><th>p95</th></tr>
${summary.steps.map((s) => `<tr><td>${escapeHtml(s.step)}</td><td class="num">${s.n}</td><td class="num">${formatMs(s.p50)}</td><td class="num">${formatMs(s.p95)}</td></tr>`).join("\n")}
</table>
<table><caption>Convex environment</caption>
${Object.entries(meta.env)
  .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td class="mono">${escapeHtml(v)}</td></tr>`)
  .join("\n")}
</table>
</div>
${storyRunsTable(meta.storyRuns ?? [])}
<h3>All jobs on one clock</h3>
<div class="legend">${STATUSES.map((s) => `<span><span class="dot s-${s}"></span>${s}</span>`).join(" ")}</div>
${snapshots.map((s) => `<div class="lane"><span class="lane-label">${escapeHtml(s.story.slug)}</span>${timeline(s, t0, span)}</div>`).join("\n")}
</section>
${snapshots.map((s) => caseFile(s, t0, span)).join("\n")}
</body></html>
`;
}

/** One row per story run: its path through the state machine, and every failed attempt's code. */
function storyRunsTable(runs: RunSnapshot[]): string {
  if (runs.length === 0) return "";
  const rows = runs.map(({ run, events, slug }) => {
    const path = events.map((e) => `<span class="s-text-${e.to === "inserted" ? "stored" : e.to}">${e.to}</span>`).join(" → ");
    const failures = events
      .filter((e) => e.to === "failed" && e.error)
      .map((e) => `#${e.attempt} ${escapeHtml(e.error!.code)}${e.error!.httpStatus ? ` (HTTP ${e.error!.httpStatus})` : ""}`)
      .join(", ");
    const story = slug ? `<a href="#${escapeHtml(slug)}">${escapeHtml(slug)}</a>` : "";
    const total = events.length ? formatMs(events[events.length - 1]!.at - events[0]!.at) : "";
    return `<tr class="run-${run.status}"><td class="mono">${escapeHtml(run._id)}</td><td>${run.status}</td><td class="num">${run.attempt}</td><td>${path}</td><td class="error">${failures}</td><td class="num">${total}</td><td>${story}</td></tr>`;
  });
  return `<h3>Story runs</h3>
<table class="events"><tr><th>run</th><th>status</th><th>attempts</th><th>path</th><th>failed attempts</th><th>time</th><th>case file</th></tr>
${rows.join("\n")}
</table>`;
}

/** One bar per job on the shared clock: a segment per state the job was in. */
function timeline({ events }: StorySnapshot, t0: number, span: number): string {
  const pct = (ms: number) => ((100 * ms) / span).toFixed(3);
  const segments = events.map((event, i) => {
    const end = events[i + 1]?.at ?? event.at;
    const title = `${event.from ?? "new"} → ${event.to} at ${clock(event.at)} (attempt ${event.attempt})`;
    return `<span class="seg s-${event.to}" style="left:${pct(event.at - t0)}%;width:${pct(end - event.at)}%" title="${escapeHtml(title)}"></span>`;
  });
  return `<div class="track">${segments.join("")}</div>`;
}

function caseFile(snapshot: StorySnapshot, t0: number, span: number): string {
  const { story, job, png } = snapshot;
  const portrait = png
    ? `<img class="portrait" alt="Portrait of ${escapeHtml(story.patientName)}" src="data:image/png;base64,${Buffer.from(png).toString("base64")}">`
    : `<div class="portrait missing"><span>no portrait</span><small>${escapeHtml(job?.error?.code ?? job?.status ?? "no job")}</small></div>`;
  const status = job ? `<span class="badge s-${job.status}">${job.status}${job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}</span>` : "";
  const failure = job?.error
    ? `<p class="error">${escapeHtml(job.error.code)}${job.error.httpStatus ? ` (HTTP ${job.error.httpStatus})` : ""} at ${escapeHtml(job.error.step)}: ${escapeHtml(job.error.message)}</p>`
    : "";
  return `<section class="case" id="${escapeHtml(story.slug)}">
<div class="case-head">${portrait}
<div><h2>${escapeHtml(story.title)} ${status}</h2>
<p class="patient">Patient ${escapeHtml(story.patientNumber)} · ${escapeHtml(story.patientName)}</p>
<p class="intro">${escapeHtml(story.introduction)}</p>${failure}
<details><summary>Patient history</summary><p>${escapeHtml(story.story)}</p><p class="prompt">Portrait prompt: ${escapeHtml(story.imageGenerationPrompt)}</p></details>
</div></div>
<ol class="chapters">
${story.chapters.map((c) => `<li><span class="diff d-${c.difficulty}">${c.difficulty}</span> ${escapeHtml(c.text)}</li>`).join("\n")}
</ol>
<h3>Portrait job${job ? ` <span class="mono">${escapeHtml(job._id)}</span>` : ""}</h3>
${timeline(snapshot, t0, span)}
${eventsTable(snapshot)}
</section>`;
}

/** "TinyPNG 41.2 KB → 12.0 KB", or why compression was skipped or failed. */
function compressionNote(compression: NonNullable<StorySnapshot["events"][number]["details"]>["compression"]): string {
  if (!compression) return "";
  if (compression.compressedBytes !== undefined)
    return `TinyPNG ${formatBytes(compression.originalBytes)} → ${formatBytes(compression.compressedBytes)}`;
  return `compression ${compression.outcome}: ${compression.reason ?? ""}`;
}

function eventsTable({ events }: StorySnapshot): string {
  const rows = stepsOf(events).map(({ event, stepMs }) => {
    const d = event.details ?? {};
    const e = event.error;
    const cells = [
      String(event.attempt),
      `${event.from ?? "new"} → <span class="s-text-${event.to}">${event.to}</span>`,
      clock(event.at),
      formatMs(stepMs),
      d.durationMs === undefined ? "" : formatMs(d.durationMs),
      String(d.httpStatus ?? e?.httpStatus ?? ""),
      escapeHtml(d.recraftRequestId ?? ""),
      d.credits === undefined ? "" : String(d.credits),
      d.bytes === undefined ? "" : formatBytes(d.bytes),
      escapeHtml(
        [d.contentType, d.reason, compressionNote(d.compression), d.retryAt ? `retry at ${clock(d.retryAt)}` : ""]
          .filter(Boolean)
          .join(" · "),
      ),
      e ? `<span class="error">${escapeHtml(e.code)}</span> ${escapeHtml(e.message)}` : "",
    ];
    return `<tr class="ev-${event.to}">${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
  });
  return `<table class="events"><tr><th>attempt</th><th>transition</th><th>time (UTC)</th><th>step</th><th>work</th><th>HTTP</th><th>Recraft request id</th><th>credits</th><th>bytes</th><th>detail</th><th>error</th></tr>
${rows.join("\n")}
</table>`;
}

const CSS = `
:root{--bg:#0b0b0d;--panel:#131317;--ink:#cfc9bd;--dim:#7d786e;--line:#2a2a30;--blood:#9e2a2b;--rust:#b5651d;--bile:#8a8f3c;--ice:#4f7c8a;--moss:#4e8a5a}
*{box-sizing:border-box}body{margin:0;padding:2rem;background:var(--bg);color:var(--ink);font:15px/1.5 Georgia,"Times New Roman",serif}
h1{font-weight:normal;letter-spacing:.2em;text-transform:uppercase;color:#e6e0d3;margin:0}h2{font-weight:normal;margin:.2rem 0}h3{font-weight:normal;color:var(--dim);text-transform:uppercase;letter-spacing:.1em;font-size:.8rem;margin:1.2rem 0 .4rem}
.sub,.note{color:var(--dim);margin:.3rem 0}.note{font-style:italic}
section{background:var(--panel);border:1px solid var(--line);padding:1.2rem 1.5rem;margin:1.5rem 0;box-shadow:0 0 40px #000 inset}
.tables{display:flex;flex-wrap:wrap;gap:2rem;align-items:flex-start}
table{border-collapse:collapse;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}caption{text-align:left;color:var(--dim);padding-bottom:.3rem}
th,td{border-bottom:1px solid var(--line);padding:.25rem .6rem;text-align:left;vertical-align:top}th{color:var(--dim);font-weight:normal}.num{text-align:right}.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.case-head{display:flex;gap:1.5rem;align-items:flex-start}.portrait{width:256px;height:256px;flex:none;border:1px solid var(--line);filter:contrast(1.1);image-rendering:auto}
.portrait.missing{display:flex;flex-direction:column;align-items:center;justify-content:center;background:repeating-linear-gradient(45deg,#111 0 10px,#161618 10px 20px);color:var(--blood);text-transform:uppercase;letter-spacing:.2em}
.patient{color:var(--dim);font-variant:small-caps;margin:0}.intro{font-style:italic}.prompt{color:var(--dim);font-size:.9em}
.chapters{columns:2;column-gap:2rem;padding-left:1.5rem}.chapters li{break-inside:avoid;margin-bottom:.4rem}
.diff{font:11px ui-monospace,monospace;padding:0 .4rem;border:1px solid;text-transform:uppercase}.d-easy{color:var(--moss)}.d-medium{color:var(--rust)}.d-hard{color:var(--blood)}
.badge{font:12px ui-monospace,monospace;padding:.1rem .5rem;vertical-align:middle;border:1px solid;text-transform:uppercase}
.error{color:#d9534f}.events td:last-child{max-width:32rem}
.track{position:relative;height:14px;background:#0e0e11;border:1px solid var(--line);margin:.3rem 0 .8rem;flex:1}.seg{position:absolute;top:0;bottom:0;min-width:2px}
.lane{display:flex;gap:1rem;align-items:center}.lane-label{width:16rem;font:12px ui-monospace,monospace;color:var(--dim);overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.lane .track{margin:.15rem 0}
.legend{display:flex;gap:1rem;font:12px ui-monospace,monospace;color:var(--dim);margin-bottom:.4rem}.dot{display:inline-block;width:.7rem;height:.7rem;margin-right:.3rem;vertical-align:middle}
.s-pending{background:#555560;color:#aaa}.s-requested{background:var(--rust);color:var(--rust)}.s-downloaded{background:var(--ice);color:var(--ice)}.s-stored{background:var(--moss);color:var(--moss)}.s-failed{background:var(--blood);color:#e06666}
.badge.s-pending,.badge.s-requested,.badge.s-downloaded,.badge.s-stored,.badge.s-failed{background:none}
.s-text-stored{color:var(--moss)}.s-text-failed{color:#e06666}.s-text-requested{color:var(--rust)}.s-text-downloaded{color:var(--ice)}
details summary{cursor:pointer;color:var(--dim)}
`;
