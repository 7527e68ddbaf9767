import { useEffect, useRef, useState } from "react";
import { errorCode, jobStatus, storyRunStatus, type ErrorCode, type JobStatus, type StoryRunStatus } from "../../convex/validators";

export const STATUSES: JobStatus[] = jobStatus.members.map((m) => m.value);
export const ERROR_CODES: ErrorCode[] = errorCode.members.map((m) => m.value);
export const RUN_STATUSES: StoryRunStatus[] = storyRunStatus.members.map((m) => m.value);

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/**
 * The one way the console writes a moment: local date and 24-hour time,
 * e.g. 2026-12-01 14:03:27 (with `ms`, 14:03:27.412), the same in every view
 * whatever the browser's locale.
 */
export function formatDateTime(at: number, { ms = false } = {}): string {
  const d = new Date(at);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time}${ms ? `.${pad(d.getMilliseconds(), 3)}` : ""}`;
}

/** The time zone the console's times are in, e.g. "UTC+01:00". */
export function zoneLabel(at = Date.now()): string {
  const offset = -new Date(at).getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** Now, rounded up to the minute: a query argument that changes once a minute, so its result caches. */
export function useMinute(): number {
  const now = useNow(15_000);
  return Math.ceil(now / 60_000) * 60_000;
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "—";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The current time, refreshed every `intervalMs` (for ages). */
export function useNow(intervalMs = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function useDebounced<T>(value: T, delayMs: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), delayMs);
    return () => clearTimeout(timer);
  }, [value, delayMs]);
  return debounced;
}

/**
 * The last loaded value of a query while the same view re-subscribes with new
 * arguments (e.g. `now` moving on a minute), so the view does not flash
 * "Loading…"; a different `key` (another range) starts empty.
 */
export function useKept<T>(value: T | undefined, key: string): T | undefined {
  const kept = useRef<{ key: string; value: T } | undefined>(undefined);
  if (value !== undefined) kept.current = { key, value };
  return value ?? (kept.current?.key === key ? kept.current.value : undefined);
}
