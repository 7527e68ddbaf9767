/** Nearest-rank percentile (p in 0..100) of unsorted numbers; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? NaN;
}

export const median = (values: number[]) => percentile(values, 50);

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** For each of `starts` (any order), how many starts the `windowMs` ending at it holds, itself included. */
export function windowCounts(starts: readonly number[], windowMs: number): number[] {
  const sorted = [...starts].sort((a, b) => a - b);
  let first = 0;
  return sorted.map((at, i) => {
    while (sorted[first]! <= at - windowMs) first++;
    return i - first + 1;
  });
}

/** How many of `starts` came while `limit` others had already come in the `windowMs` before them. */
export const overLimit = (starts: readonly number[], windowMs: number, limit: number) =>
  windowCounts(starts, windowMs).filter((n) => n > limit).length;
