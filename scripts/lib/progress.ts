/**
 * Live progress in the terminal: redrawn in place on a TTY, plain lines
 * (on change, at most once a second) otherwise, e.g. in CI.
 */
import type { Progress } from "./stack.ts";

const STATUSES = ["pending", "requested", "downloaded", "stored", "failed"] as const;
const RUN_STATUSES = ["pending", "writing", "repairing", "inserted", "failed"] as const;
const BAR_WIDTH = 24;

export interface ProgressView {
  update(progress: Progress): void;
  finish(progress: Progress): void;
}

function bar(done: number, total: number): string {
  const filled = total === 0 ? 0 : Math.round((BAR_WIDTH * Math.min(done, total)) / total);
  return `[${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}]`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const terminal = (p: Progress) => p.counts.stored + p.counts.failed;

function statusLine(p: Progress): string {
  return STATUSES.map((s) => `${s} ${p.counts[s]}`).join(" · ");
}

function runLine(p: Progress): string {
  return RUN_STATUSES.map((s) => `${s} ${p.runs[s]}`).join(" · ");
}

function storyFailureLine(f: Progress["storyAttemptFailures"][number]): string {
  const http = f.httpStatus ? ` HTTP ${f.httpStatus}` : "";
  return `✗ story run ${f.index + 1} attempt ${f.attempt}: ${f.code}${http} (${f.retrying ? "retrying" : "failed"}) ${f.message.slice(0, 80)}`;
}

function failureLine(f: Progress["failures"][number]): string {
  const http = f.httpStatus ? ` HTTP ${f.httpStatus}` : "";
  const outcome = f.retrying ? "retrying" : "failed";
  return `✗ ${f.slug} attempt ${f.attempt}: ${f.code}${http} (${outcome}) ${f.message.slice(0, 90)}`;
}

export function progressView(out: NodeJS.WriteStream | NodeJS.WritableStream, isTTY: boolean): ProgressView {
  return isTTY ? ttyView(out) : plainView(out);
}

function ttyView(out: NodeJS.WritableStream): ProgressView {
  let drawn = 0;
  const draw = (p: Progress) => {
    const lines = [
      `story runs  ${bar(p.written + p.storyFailures.length, p.requested)} ${p.written}/${p.requested} written${p.storyFailures.length ? `, ${p.storyFailures.length} failed` : ""}`,
      `            ${runLine(p)}`,
      ...p.storyAttemptFailures.slice(-4).map((f) => `  ${storyFailureLine(f)}`),
      `portraits   ${bar(terminal(p), p.requested)} ${terminal(p)}/${p.requested} done   ${seconds(p.elapsedMs)}`,
      `            ${statusLine(p)}`,
      ...p.failures.slice(-8).map((f) => `  ${failureLine(f)}`),
    ];
    // Lines are cut to the terminal's width: a wrapped line would break the move up.
    const width = Math.max(20, ((out as NodeJS.WriteStream).columns ?? 120) - 1);
    const frame = lines.map((line) => [...line].slice(0, width).join(""));
    // Move up over the previous frame and clear it, then draw the new one.
    out.write(`${drawn ? `\x1b[${drawn}A` : ""}\x1b[J${frame.join("\n")}\n`);
    drawn = lines.length;
  };
  return { update: draw, finish: draw };
}

function plainView(out: NodeJS.WritableStream): ProgressView {
  let last = "";
  let lastAt = 0;
  let failuresShown = 0;
  let storyFailuresShown = 0;
  const print = (p: Progress, force: boolean) => {
    for (const f of p.failures.slice(failuresShown)) out.write(`  ${failureLine(f)}\n`);
    failuresShown = p.failures.length;
    for (const f of p.storyAttemptFailures.slice(storyFailuresShown)) out.write(`  ${storyFailureLine(f)}\n`);
    storyFailuresShown = p.storyAttemptFailures.length;
    const line = `story runs ${p.written}/${p.requested} written (${runLine(p)}) | portraits ${terminal(p)}/${p.requested} done | ${statusLine(p)}`;
    const now = Date.now();
    if (line !== last && (force || now - lastAt >= 1000)) {
      out.write(`[${seconds(p.elapsedMs).padStart(7)}] ${line}\n`);
      last = line;
      lastAt = now;
    }
  };
  return { update: (p) => print(p, false), finish: (p) => print(p, true) };
}
