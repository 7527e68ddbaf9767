/**
 * Every view's state lives in the address (hash routing), so a view can be
 * shared, reloaded and left with Back:
 *
 *   #/?status=failed&code=unauthorized&http=401&range=24h&q=0470&sort=total&dir=desc   the job list
 *   #/jobs/<jobId>                                                    one job
 *   #/audit?range=7d&code=unauthorized                                activity and failures
 *   #/stories?status=failed                                           story runs
 *   #/stories/<runId>                                                 one story run
 *
 * A link that cannot be read (a malformed escape, an unknown page) is a
 * "not found" route, never an exception.
 */
import { useEffect, useState } from "react";
import type { ErrorCode, JobStatus, StoryRunStatus } from "../../convex/validators";
import { ERROR_CODES, RUN_STATUSES, STATUSES } from "./format";

const SORT_KEYS = ["created", "changed", "started", "finished", "total"] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const RANGES = ["6h", "24h", "7d", "30d"] as const;
export type Range = (typeof RANGES)[number];

/** The job list's time range: jobs whose last change is within it. */
export const JOB_RANGES = { "1h": 3_600_000, "6h": 21_600_000, "24h": 86_400_000, "7d": 604_800_000 } as const;
export type JobRange = keyof typeof JOB_RANGES;

export type JobsRoute = {
  page: "jobs";
  status?: JobStatus;
  code?: ErrorCode;
  http?: number;
  range?: JobRange;
  q?: string;
  msg?: string;
  sort?: SortKey;
  dir?: "asc" | "desc";
};
export type StoriesRoute = { page: "stories"; status?: StoryRunStatus };
export type Route =
  | JobsRoute
  | { page: "job"; id: string }
  | { page: "audit"; range: Range; code?: ErrorCode }
  | StoriesRoute
  | { page: "storyRun"; id: string }
  | { page: "notFound"; hash: string };

const pick = <T extends string>(options: readonly T[], value: string | null): T | undefined => options.find((o) => o === value);

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function httpStatus(text: string | null): number | undefined {
  const n = Number(text);
  return text && Number.isInteger(n) && n >= 100 && n <= 599 ? n : undefined;
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [path = "", query = ""] = raw.split("?");
  // URLSearchParams never throws: a malformed escape in a value decodes to U+FFFD.
  const params = new URLSearchParams(query);
  const job = path.match(/^\/jobs\/([^/]+)$/);
  if (job) {
    const id = safeDecode(job[1]!);
    return id === undefined ? { page: "notFound", hash: raw } : { page: "job", id };
  }
  const run = path.match(/^\/stories\/([^/]+)$/);
  if (run) {
    const id = safeDecode(run[1]!);
    return id === undefined ? { page: "notFound", hash: raw } : { page: "storyRun", id };
  }
  if (path === "/audit")
    return { page: "audit", range: pick(RANGES, params.get("range")) ?? "24h", code: pick(ERROR_CODES, params.get("code")) };
  if (path === "/stories") return { page: "stories", status: pick(RUN_STATUSES, params.get("status")) };
  if (path !== "" && path !== "/") return { page: "notFound", hash: raw };
  return {
    page: "jobs",
    status: pick(STATUSES, params.get("status")),
    code: pick(ERROR_CODES, params.get("code")),
    http: httpStatus(params.get("http")),
    range: pick(Object.keys(JOB_RANGES) as JobRange[], params.get("range")),
    q: params.get("q")?.trim() || undefined,
    msg: params.get("msg")?.trim() || undefined,
    sort: pick(SORT_KEYS, params.get("sort")),
    dir: pick(["asc", "desc"] as const, params.get("dir")),
  };
}

export function formatRoute(route: Route): string {
  const query = (entries: Record<string, string | undefined>) => {
    const params = new URLSearchParams(Object.entries(entries).filter((e): e is [string, string] => !!e[1]));
    const text = params.toString();
    return text ? `?${text}` : "";
  };
  switch (route.page) {
    case "job":
      return `#/jobs/${encodeURIComponent(route.id)}`;
    case "audit":
      return `#/audit${query({ range: route.range === "24h" ? undefined : route.range, code: route.code })}`;
    case "stories":
      return `#/stories${query({ status: route.status })}`;
    case "storyRun":
      return `#/stories/${encodeURIComponent(route.id)}`;
    case "notFound":
      return `#${route.hash}`;
    case "jobs":
      return `#/${query({ status: route.status, code: route.code, http: route.http?.toString(), range: route.range, q: route.q, msg: route.msg, sort: route.sort, dir: route.dir })}`;
  }
}

/** A view's identity: moving to another one moves focus to its heading; changing a filter does not. */
export function viewKey(route: Route): string {
  return route.page === "job" || route.page === "storyRun" ? `${route.page}:${route.id}` : route.page;
}

let focusRequested = false;
/** True once after a navigation to another view: the new view's heading takes focus. */
export function takeFocusRequest(): boolean {
  const requested = focusRequested;
  focusRequested = false;
  return requested;
}

/** Goes to `route`: a new history entry, or (`replace`, e.g. while typing a search) the current one. */
function navigate(route: Route, { replace = false } = {}) {
  const hash = formatRoute(route);
  if (hash === window.location.hash || (hash === "#/" && window.location.hash === "")) return;
  if (replace) {
    history.replaceState(history.state, "", hash);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = hash;
  }
}

/**
 * Changes some of the current view's state. Reads the address now rather than
 * a rendered route, so two changes in a row (before React re-renders) both count.
 */
export function patchRoute<R extends Route>(rendered: R, patch: Partial<R>, options?: { replace?: boolean }) {
  const current = parseRoute(window.location.hash);
  navigate({ ...(current.page === rendered.page ? (current as R) : rendered), ...patch }, options);
}

export function useRoute(): Route {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    let current = window.location.hash;
    const onChange = () => {
      const next = window.location.hash;
      if (viewKey(parseRoute(next)) !== viewKey(parseRoute(current))) focusRequested = true;
      current = next;
      setHash(next);
    };
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return parseRoute(hash);
}
