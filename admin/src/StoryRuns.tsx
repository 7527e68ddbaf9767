import { usePaginatedQuery, useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import type { StoryRunStatus } from "../../convex/validators";
import { formatDateTime, RUN_STATUSES } from "./format";
import { LoadMore, StatusBadge, Thumb } from "./JobTable";
import { patchRoute, type StoriesRoute } from "./route";
import { Time } from "./Time";
import { ViewHeading } from "./ViewHeading";

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
          {run.attempt > 1
            ? `Claude failed (${detail.events.at(-2)?.error?.code ?? "error"}); retrying at ${formatDateTime(run.runAt)}`
            : "Queued…"}
        </span>
      );
    case "writing":
      return (
        <span className="muted" data-run-status="writing">
          Asking Claude{attempt}…
        </span>
      );
    case "repairing":
      return (
        <span className="muted" data-run-status="repairing">
          Asking Claude to fix the chapters{attempt}…
        </span>
      );
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
export function StoryRuns({ route, pageSize = 20 }: { route: StoriesRoute; pageSize?: number }) {
  const { status } = route;
  const {
    results,
    status: loading,
    loadMore,
  } = usePaginatedQuery(api.admin.listStoryRuns, status ? { status } : {}, { initialNumItems: pageSize });
  return (
    <section className="panel" aria-labelledby="view-title">
      <div className="panel-head">
        <ViewHeading id="view-title" title="Story runs">
          Story runs
        </ViewHeading>
        <div className="filters">
          <label>
            Status
            <select
              value={status ?? ""}
              onChange={(e) => patchRoute(route, { status: (e.target.value || undefined) as StoryRunStatus | undefined })}
            >
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
        <table className="jobs runs stack">
          <caption className="visually-hidden">Story runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Case file</th>
              <th scope="col">Portrait</th>
              <th scope="col" className="num">
                Attempt
              </th>
              <th scope="col">Created</th>
              <th scope="col">Error</th>
              <th scope="col">Run</th>
            </tr>
          </thead>
          <tbody>
            {results.map((row) => (
              <tr key={row.runId} data-run-id={row.runId}>
                <td data-label="Status">
                  <RunBadge status={row.status} />
                </td>
                <td data-label="Case file" className="story-cell">
                  <div className="story-line">
                    <Thumb url={row.job?.portraitUrl ?? null} />
                    <div>
                      {row.job ? (
                        <a href={`#/jobs/${row.job.jobId}`}>{row.story?.title ?? "(story deleted)"}</a>
                      ) : (
                        !row.hint && <span className="muted">—</span>
                      )}
                      {/* The theme stays once the story is written: it is what the operator asked for. */}
                      {row.hint && <div className="muted break">theme: {row.hint}</div>}
                    </div>
                  </div>
                </td>
                <td data-label="Portrait">{row.job ? <StatusBadge status={row.job.status} /> : <span className="muted">—</span>}</td>
                <td data-label="Attempt" className="num">
                  {row.attempt}
                </td>
                <td data-label="Created">
                  <Time at={row.createdAt} />
                </td>
                <td data-label="Error" className="message">
                  {row.error ? (
                    <>
                      <span className="code">{row.error.code}</span> <span className="break">{row.error.message}</span>
                    </>
                  ) : row.status === "pending" && row.attempt > 1 ? (
                    <span className="muted">retry at {formatDateTime(row.runAt)}</span>
                  ) : null}
                </td>
                <td data-label="Run">
                  <a
                    href={`#/stories/${row.runId}`}
                    aria-label={`Story run ${row.story?.title ?? row.hint ?? ""} (${row.status}, attempt ${row.attempt})`.replace(
                      "  ",
                      " ",
                    )}
                  >
                    Details
                  </a>
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
