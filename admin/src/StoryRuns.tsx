import { usePaginatedQuery, useQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { storyRunStatus, type StoryRunStatus } from "../../convex/validators";
import { formatAge, formatDateTime, formatTime, useNow } from "./format";
import { StatusBadge } from "./JobTable";

export const RUN_STATUSES: StoryRunStatus[] = storyRunStatus.members.map((m) => m.value);

export function RunBadge({ status }: { status: StoryRunStatus }) {
  return <span className={`badge run-${status}`}>{status}</span>;
}

/**
 * Follows one story run live to its end: what it is doing now, then the case
 * file and its portrait job, or the failure's stable code.
 */
export function FollowRun({ runId }: { runId: Id<"storyRuns"> }) {
  const detail = useQuery(api.admin.getStoryRun, { runId });
  if (detail === undefined) return <span className="muted">Queued…</span>;
  if (detail === null) return <span className="error-text">Story run not found</span>;
  const { run } = detail;
  const attempt = run.attempt > 1 ? ` (attempt ${run.attempt})` : "";
  switch (run.status) {
    case "pending":
      return (
        <span className="muted" data-run-status="pending">
          {run.attempt > 1 ? `Claude failed (${detail.events.at(-2)?.error?.code ?? "error"}); retrying at ${formatTime(run.runAt)}` : "Queued…"}
        </span>
      );
    case "writing":
      return <span className="muted" data-run-status="writing">Asking Claude{attempt}…</span>;
    case "repairing":
      return <span className="muted" data-run-status="repairing">Asking Claude to fix the chapters{attempt}…</span>;
    case "inserted":
      return (
        <span data-run-status="inserted">
          Written: {run.job ? <a href={`#/jobs/${run.job.jobId}`}>{run.story?.title ?? "case file"}</a> : (run.story?.title ?? "case file")}
          {run.job && (
            <>
              {" "}
              · portrait <StatusBadge status={run.job.status} />
            </>
          )}
        </span>
      );
    case "failed":
      return (
        <span className="error-text" data-run-status="failed">
          Failed{attempt}: <span className="code">{run.error?.code}</span> {run.error?.message}
        </span>
      );
  }
}

/** Every story run, newest first, live: status, attempts, error, the story and its portrait job. */
export function StoryRuns({ pageSize = 20 }: { pageSize?: number }) {
  const [status, setStatus] = useState<StoryRunStatus | "">("");
  const { results, status: loading, loadMore } = usePaginatedQuery(api.admin.listStoryRuns, status ? { status } : {}, { initialNumItems: pageSize });
  const now = useNow();
  return (
    <section className="panel" aria-labelledby="runs-title">
      <div className="panel-head">
        <h2 id="runs-title">Story runs</h2>
        <div className="filters">
          <label>
            Status
            <select value={status} onChange={(e) => setStatus(e.target.value as StoryRunStatus | "")}>
              <option value="">all</option>
              {RUN_STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
        </div>
      </div>
      {loading === "LoadingFirstPage" ? (
        <p className="muted" role="status">
          Loading story runs…
        </p>
      ) : results.length === 0 ? (
        <p className="empty" role="status">
          {status ? "No story runs with this status." : "No story runs yet. Generate a story, or wait for the daily one."}
        </p>
      ) : (
        <table className="jobs runs">
          <caption className="visually-hidden">Story runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Case file</th>
              <th scope="col">Portrait</th>
              <th scope="col">Attempt</th>
              <th scope="col">Age</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {results.map((row) => (
              <tr key={row.runId} data-run-id={row.runId}>
                <td>
                  <RunBadge status={row.status} />
                </td>
                <td>
                  {row.job ? (
                    <a href={`#/jobs/${row.job.jobId}`}>{row.story?.title ?? "(story deleted)"}</a>
                  ) : (
                    <span className="muted">{row.hint ? `theme: ${row.hint}` : "—"}</span>
                  )}
                </td>
                <td>{row.job ? <StatusBadge status={row.job.status} /> : <span className="muted">—</span>}</td>
                <td className="num">{row.attempt}</td>
                <td title={`created ${formatDateTime(row.createdAt)}, updated ${formatDateTime(row.updatedAt)}`}>{formatAge(now - row.createdAt)}</td>
                <td>
                  {row.error ? (
                    <span className="code" title={row.error.message}>
                      {row.error.code}
                    </span>
                  ) : row.status === "pending" && row.attempt > 1 ? (
                    <span className="muted">retry at {formatTime(row.runAt)}</span>
                  ) : null}
                </td>
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
