import { usePaginatedQuery, useQuery } from "convex/react";
import type { FunctionReturnType } from "convex/server";
import { useEffect, useRef, useState } from "react";
import { api } from "../../convex/_generated/api";
import type { ErrorCode, JobStatus } from "../../convex/validators";
import { BulkRetry, type RetryFilter } from "./BulkRetry";
import { formatMs, STATUSES, useDebounced, useMinute } from "./format";
import { JOB_RANGES, patchRoute, type JobRange, type JobsRoute, type SortKey } from "./route";
import { Time } from "./Time";
import { Loading } from "./Connection";
import { ViewHeading } from "./ViewHeading";

type Row = FunctionReturnType<typeof api.admin.listJobs>["page"][number];

/** The "Load more" button of a paginated list, while there is more to load. */
export function LoadMore({ status, onLoad }: { status: string; onLoad: () => void }) {
  if (status !== "CanLoadMore" && status !== "LoadingMore") return null;
  return (
    <button type="button" className="load-more" onClick={onLoad} disabled={status === "LoadingMore"}>
      {status === "LoadingMore" ? "Loading…" : "Load more"}
    </button>
  );
}

/** A small portrait (decorative: the title beside it names the story), or an empty frame. */
export function Thumb({ url }: { url: string | null }) {
  return url ? (
    <img className="thumb" src={url} alt="" width={40} height={40} loading="lazy" />
  ) : (
    <span className="thumb thumb-empty" aria-hidden="true" />
  );
}

export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge status-${status}`}>{status}</span>;
}

/** Created → finished: the whole life of the job, queue wait and retries included. */
const totalMs = (row: Row) => (row.finishedAt === null ? null : row.finishedAt - row.createdAt);

const SORT_VALUE: Record<SortKey, (row: Row) => number | null> = {
  created: (row) => row.createdAt,
  changed: (row) => row.updatedAt,
  started: (row) => row.startedAt,
  finished: (row) => row.finishedAt,
  total: totalMs,
};

const SORT_LABEL: Record<SortKey, string> = {
  created: "Created",
  changed: "Last change",
  started: "Started",
  finished: "Finished",
  total: "Total",
};

/** The order the server returns: creation, or last change once filtered by status or code; search by relevance. */
function serverOrder(route: JobsRoute): SortKey | undefined {
  if (route.q) return undefined;
  return route.status || route.code || route.http || route.range || route.msg ? "changed" : "created";
}

const RANGE_LABEL: Record<JobRange, string> = { "1h": "last hour", "6h": "last 6 hours", "24h": "last 24 hours", "7d": "last 7 days" };

/** Failed jobs' codes and HTTP statuses, with counts (100+ beyond 100), for the filters. */
function useFacets() {
  const facets = useQuery(api.admin.failedFacets);
  const n = (f: { count: number; capped: boolean }) => (f.capped ? `${f.count}+` : `${f.count}`);
  return {
    codes: (facets?.codes ?? []).map((f) => ({ value: f.code, label: `${f.code} (${n(f)})` })),
    httpStatuses: (facets?.httpStatuses ?? []).map((f) => ({ value: String(f.httpStatus), label: `${f.httpStatus} (${n(f)})` })),
  };
}

/** A filter's select: its options, plus the current value even when no failed job has it now. */
function FilterSelect({
  id,
  label,
  value,
  any,
  options,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  any: string;
  options: { value: string; label: string }[];
  onChange: (value: string) => void;
}) {
  const shown = value && !options.some((o) => o.value === value) ? [...options, { value, label: `${value} (0)` }] : options;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">{any}</option>
        {shown.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

function sortRows(rows: Row[], key: SortKey, dir: "asc" | "desc"): Row[] {
  const value = SORT_VALUE[key];
  // Rows without the value (not started, not finished) go last either way.
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    return dir === "asc" ? x - y : y - x;
  });
}

export function JobTable({ route, pageSize = 20, searchDelayMs = 250 }: { route: JobsRoute; pageSize?: number; searchDelayMs?: number }) {
  const { status, code, http, range, q, msg } = route;
  const routeRef = useRef(route);
  routeRef.current = route;
  const [messageInput, setMessageInput] = useState(msg ?? "");
  const message = useDebounced(messageInput.trim(), searchDelayMs);
  useEffect(() => {
    if (message !== (routeRef.current.msg ?? "")) patchRoute(routeRef.current, { msg: message || undefined }, { replace: true });
  }, [message]);
  useEffect(() => {
    if ((msg ?? "") !== message) setMessageInput(msg ?? "");
  }, [msg]);
  const minute = useMinute();
  const since = range ? minute - JOB_RANGES[range] : undefined;
  const facets = useFacets();
  const [searchInput, setSearchInput] = useState(q ?? "");
  const search = useDebounced(searchInput.trim(), searchDelayMs);
  // Typing updates the address in place (no history entry per keystroke)…
  useEffect(() => {
    if (search !== (routeRef.current.q ?? "")) patchRoute(routeRef.current, { q: search || undefined }, { replace: true });
  }, [search]);
  // …and Back, or a shared link, puts the address's search in the box.
  useEffect(() => {
    if ((q ?? "") !== search) setSearchInput(q ?? "");
  }, [q]);

  const filtered = !!(status || code || http || range || q || msg);
  const {
    results,
    status: loading,
    loadMore,
  } = usePaginatedQuery(
    api.admin.listJobs,
    {
      ...(status && { status }),
      ...(code && { errorCode: code }),
      ...(http && { httpStatus: http }),
      ...(since !== undefined && { since }),
      ...(q && { search: q }),
      ...(msg && { message: msg }),
    },
    { initialNumItems: pageSize },
  );
  // "Retry all matching" re-queues the failed jobs this filter shows (a text search narrows only the list).
  const retryable = !q && !msg && (status === "failed" || (!status && !!(code || http)));
  const retryFilter: RetryFilter = { ...(code && { code }), ...(http && { httpStatus: http }), ...(since !== undefined && { since }) };
  const retryWhat =
    [code && `code ${code}`, http && `HTTP ${http}`, range && `a change in the ${RANGE_LABEL[range]}`].filter(Boolean).join(", ") ||
    "any error";
  const order = serverOrder(route);
  const sortKey = route.sort ?? order;
  const dir = route.dir ?? "desc";
  const rows = route.sort ? sortRows(results, route.sort, dir) : results;
  const showChanged = order === "changed" || sortKey === "changed";

  const sortButton = (key: SortKey) => {
    const active = sortKey === key;
    const nextDir = active && dir === "desc" ? "asc" : "desc";
    return (
      <th scope="col" aria-sort={active ? (dir === "asc" ? "ascending" : "descending") : undefined}>
        <button
          type="button"
          className="sort"
          onClick={() => patchRoute(route, { sort: key, dir: nextDir })}
          aria-label={`Sort by ${SORT_LABEL[key].toLowerCase()}, ${nextDir === "desc" ? "newest or longest first" : "oldest or shortest first"}`}
        >
          {SORT_LABEL[key]}
          <span aria-hidden="true">{active ? (dir === "asc" ? " ▲" : " ▼") : ""}</span>
        </button>
      </th>
    );
  };

  const orderText = route.sort
    ? `sorted by ${SORT_LABEL[route.sort].toLowerCase()} (${dir === "desc" ? "descending" : "ascending"}) over the ${rows.length} loaded`
    : order === "changed"
      ? "last change first"
      : order === "created"
        ? "newest first"
        : "best match first";

  return (
    <section className="panel" aria-labelledby="view-title">
      <div className="panel-head">
        <ViewHeading id="view-title" title={filtered ? "Jobs (filtered)" : "Jobs"}>
          Portrait jobs
        </ViewHeading>
        <div className="filters">
          <div className="field">
            <label htmlFor="filter-status">Status</label>
            <select
              id="filter-status"
              value={status ?? ""}
              onChange={(e) => patchRoute(route, { status: (e.target.value || undefined) as JobStatus | undefined })}
            >
              <option value="">all</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </div>
          <FilterSelect
            id="filter-code"
            label="Error code"
            value={code ?? ""}
            any="any"
            options={facets.codes}
            onChange={(value) => patchRoute(route, { code: (value || undefined) as ErrorCode | undefined })}
          />
          <FilterSelect
            id="filter-http"
            label="HTTP status"
            value={http ? String(http) : ""}
            any="any"
            options={facets.httpStatuses}
            onChange={(value) => patchRoute(route, { http: value ? Number(value) : undefined })}
          />
          <div className="field">
            <label htmlFor="filter-range">Changed</label>
            <select
              id="filter-range"
              value={range ?? ""}
              onChange={(e) => patchRoute(route, { range: (e.target.value || undefined) as JobRange | undefined })}
            >
              <option value="">any time</option>
              {(Object.keys(JOB_RANGES) as JobRange[]).map((r) => (
                <option key={r} value={r}>
                  {RANGE_LABEL[r]}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="filter-search">Search</label>
            <input
              id="filter-search"
              type="search"
              value={searchInput}
              onChange={(e) => setSearchInput(e.target.value)}
              placeholder="title, patient, number or job id"
            />
          </div>
          <div className="field">
            <label htmlFor="filter-message">Error message</label>
            <input
              id="filter-message"
              type="search"
              value={messageInput}
              onChange={(e) => setMessageInput(e.target.value)}
              placeholder="words in a failure's message"
            />
          </div>
        </div>
      </div>

      {retryable && (
        <div className="action-row bulk">
          <BulkRetry filter={retryFilter} label="Retry all matching" ariaLabel="Retry all matching" what={retryWhat} />
        </div>
      )}

      {loading === "LoadingFirstPage" ? (
        <Loading what="jobs" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          {filtered ? "No jobs match these filters." : "No jobs yet. Generate a story to start one."}
        </p>
      ) : (
        <table className="jobs stack">
          <caption className="muted" data-testid="jobs-order">
            Portrait jobs, {orderText}
          </caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Story</th>
              <th scope="col" className="num">
                Attempt
              </th>
              {sortButton("created")}
              {showChanged && sortButton("changed")}
              {sortButton("started")}
              {sortButton("finished")}
              {sortButton("total")}
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.jobId} data-job-id={row.jobId}>
                <td data-label="Status">
                  <StatusBadge status={row.status} />
                </td>
                <td data-label="Story" className="story-cell">
                  <div className="story-line">
                    <Thumb url={row.portraitUrl} />
                    <div>
                      <a href={`#/jobs/${row.jobId}`}>{row.story?.title ?? "(story deleted)"}</a>
                      {row.story && (
                        <div className="muted">
                          {row.story.patientName} <span className="mono">{row.story.patientNumber}</span>
                        </div>
                      )}
                    </div>
                  </div>
                </td>
                <td data-label="Attempt" className="num">
                  {row.attempt}
                </td>
                <td data-label="Created" data-col="created">
                  <Time at={row.createdAt} />
                </td>
                {showChanged && (
                  <td data-label="Last change" data-col="changed">
                    <Time at={row.updatedAt} />
                  </td>
                )}
                <td data-label="Started" data-col="started">
                  <Time at={row.startedAt} />
                </td>
                <td data-label="Finished" data-col="finished">
                  <Time at={row.finishedAt} />
                </td>
                <td data-label="Total" data-col="total" className="num">
                  {formatMs(totalMs(row))}
                </td>
                <td data-label="Error" className="error-cell">
                  {row.errorCode ? (
                    <>
                      <span className="code">{row.errorCode}</span> <span className="error-message">{row.errorMessage}</span>
                    </>
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <LoadMore status={loading} onLoad={() => loadMore(pageSize)} />
    </section>
  );
}
