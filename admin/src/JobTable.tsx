import { usePaginatedQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import type { ErrorCode, JobStatus } from "../../convex/validators";
import { ERROR_CODES, formatAge, formatDateTime, STATUSES, useDebounced, useNow } from "./format";

export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge status-${status}`}>{status}</span>;
}

export function JobTable({
  initialStatus,
  initialCode,
  pageSize = 20,
  searchDelayMs = 250,
}: {
  initialStatus?: JobStatus;
  initialCode?: ErrorCode;
  pageSize?: number;
  searchDelayMs?: number;
}) {
  const [status, setStatus] = useState<JobStatus | "">(initialStatus ?? "");
  const [code, setCode] = useState<ErrorCode | "">(initialCode ?? "");
  const [searchInput, setSearchInput] = useState("");
  const search = useDebounced(searchInput.trim(), searchDelayMs);
  const filtered = !!(status || code || search);
  const { results, status: loading, loadMore } = usePaginatedQuery(
    api.admin.listJobs,
    { ...(status && { status }), ...(code && { errorCode: code }), ...(search && { search }) },
    { initialNumItems: pageSize },
  );
  const now = useNow();

  return (
    <section className="panel" aria-labelledby="jobs-title">
      <div className="panel-head">
        <h2 id="jobs-title">Portrait jobs</h2>
        <div className="filters">
          <label>
            Status
            <select value={status} onChange={(e) => setStatus(e.target.value as JobStatus | "")}>
              <option value="">all</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Error code
            <select value={code} onChange={(e) => setCode(e.target.value as ErrorCode | "")}>
              <option value="">any</option>
              {ERROR_CODES.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </label>
          <label>
            Search
            <input type="search" value={searchInput} onChange={(e) => setSearchInput(e.target.value)} placeholder="title, patient or job id" />
          </label>
        </div>
      </div>

      {loading === "LoadingFirstPage" ? (
        <p className="muted" role="status">
          Loading jobs…
        </p>
      ) : results.length === 0 ? (
        <p className="empty" role="status">
          {filtered ? "No jobs match these filters." : "No jobs yet. Generate a story to start one."}
        </p>
      ) : (
        <table className="jobs">
          <caption className="visually-hidden">Portrait jobs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Story</th>
              <th scope="col">Patient</th>
              <th scope="col">Attempt</th>
              <th scope="col">Age</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {results.map((row) => (
              <tr key={row.jobId} data-job-id={row.jobId}>
                <td>
                  <StatusBadge status={row.status} />
                </td>
                <td>
                  <a href={`#/jobs/${row.jobId}`}>{row.story?.title ?? "(story deleted)"}</a>
                </td>
                <td>
                  {row.story ? (
                    <>
                      {row.story.patientName} <span className="muted mono">{row.story.patientNumber}</span>
                    </>
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
                <td className="num">{row.attempt}</td>
                <td title={`created ${formatDateTime(row.createdAt)}, updated ${formatDateTime(row.updatedAt)}`}>{formatAge(now - row.createdAt)}</td>
                <td>{row.errorCode ? <span className="code" title={row.errorMessage}>{row.errorCode}</span> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {(loading === "CanLoadMore" || loading === "LoadingMore") && (
        <button type="button" className="load-more" onClick={() => loadMore(pageSize)} disabled={loading === "LoadingMore"}>
          {loading === "LoadingMore" ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
