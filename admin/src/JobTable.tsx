import { usePaginatedQuery } from "convex/react";
import type { FunctionReturnType } from "convex/server";
import { useEffect, useRef, useState } from "react";
import { api } from "../../convex/_generated/api";
import type { ErrorCode, JobStatus } from "../../convex/validators";
import { ERROR_CODES, formatMs, STATUSES, useDebounced } from "./format";
import { patchRoute, type JobsRoute, type SortKey } from "./route";
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

const SORT_LABEL: Record<SortKey, string> = { created: "Created", changed: "Last change", started: "Started", finished: "Finished", total: "Total" };

/** The order the server returns: creation, or last change once filtered by status or code; search by relevance. */
function serverOrder(route: JobsRoute): SortKey | undefined {
  if (route.q) return undefined;
  return route.status || route.code ? "changed" : "created";
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
  const { status, code, q } = route;
  const [searchInput, setSearchInput] = useState(q ?? "");
  const search = useDebounced(searchInput.trim(), searchDelayMs);
  const routeRef = useRef(route);
  routeRef.current = route;
  // Typing updates the address in place (no history entry per keystroke)…
  useEffect(() => {
    if (search !== (routeRef.current.q ?? "")) patchRoute(routeRef.current, { q: search || undefined }, { replace: true });
  }, [search]);
  // …and Back, or a shared link, puts the address's search in the box.
  useEffect(() => {
    if ((q ?? "") !== search) setSearchInput(q ?? "");
  }, [q]);

  const filtered = !!(status || code || q);
  const { results, status: loading, loadMore } = usePaginatedQuery(
    api.admin.listJobs,
    { ...(status && { status }), ...(code && { errorCode: code }), ...(q && { search: q }) },
    { initialNumItems: pageSize },
  );
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
        <button type="button" className="sort" onClick={() => patchRoute(route, { sort: key, dir: nextDir })} aria-label={`Sort by ${SORT_LABEL[key].toLowerCase()}, ${nextDir === "desc" ? "newest or longest first" : "oldest or shortest first"}`}>
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
            <select id="filter-status" value={status ?? ""} onChange={(e) => patchRoute(route, { status: (e.target.value || undefined) as JobStatus | undefined })}>
              <option value="">all</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="filter-code">Error code</label>
            <select id="filter-code" value={code ?? ""} onChange={(e) => patchRoute(route, { code: (e.target.value || undefined) as ErrorCode | undefined })}>
              <option value="">any</option>
              {ERROR_CODES.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="filter-search">Search</label>
            <input id="filter-search" type="search" value={searchInput} onChange={(e) => setSearchInput(e.target.value)} placeholder="title, patient, number or job id" />
          </div>
        </div>
      </div>

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
                  <a href={`#/jobs/${row.jobId}`}>{row.story?.title ?? "(story deleted)"}</a>
                  {row.story && (
                    <div className="muted">
                      {row.story.patientName} <span className="mono">{row.story.patientNumber}</span>
                    </div>
                  )}
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
