import { useMutation, useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import { ActionButton } from "./ActionButton";
import { formatDateTime, formatMs } from "./format";
import { StatusBadge, Thumb } from "./JobTable";
import { RawData } from "./RawJson";
import { NoSuchRecord, RecordTimes } from "./RecordPage";
import { RunBadge } from "./StoryRuns";
import { Timeline } from "./Timeline";
import { Loading } from "./Connection";
import { ViewHeading } from "./ViewHeading";

/** Retries a failed story run as a new attempt. */
function RetryRunButton({ runId, failed }: { runId: string; failed: boolean }) {
  const retry = useMutation(api.admin.retryStoryRun);
  const run = async () =>
    (await retry({ runId })) === "queued" ? "Queued as a new attempt: Claude is asked again." : "The run is no longer failed.";
  return <ActionButton label="Retry story run" shown={failed} busyNote="Re-queueing…" run={run} testId="retry-run-note" />;
}

/**
 * One story run: its theme, its status and error, its case file and portrait
 * job, and every transition across attempts with what Claude said (model,
 * tokens, stop reason, duration, the repair turn's problems).
 */
export function StoryRunPage({ runId }: { runId: string }) {
  const data = useQuery(api.admin.getStoryRun, { runId });
  if (data === undefined) return <Loading what="story run" />;
  if (data === null) {
    return <NoSuchRecord what="story run" id={runId} back={{ href: "#/stories", label: "Back to story runs" }} />;
  }
  const { run, events } = data;
  const title = run.story?.title ?? (run.status === "inserted" ? "(story deleted)" : "Story run");
  return (
    <article className="job" aria-labelledby="view-title">
      <a href="#/stories">← All story runs</a>
      <header className="job-head">
        <ViewHeading id="view-title" title={`Story run: ${title}`} className="break">
          {title}
        </ViewHeading>
        <RunBadge status={run.status} />
        <span className="muted">attempt {run.attempt}</span>
        <span className="muted mono break">{run.runId}</span>
        <RetryRunButton runId={run.runId} failed={run.status === "failed"} />
      </header>
      <dl className="job-times">
        <div>
          <dt>Theme</dt>
          <dd className="break" data-testid="run-theme">
            {run.hint ?? <span className="muted">none</span>}
          </dd>
        </div>
        <RecordTimes createdAt={run.createdAt} updatedAt={run.updatedAt} />
        {run.job && (
          <div>
            <dt>Portrait</dt>
            <dd className="story-line">
              <Thumb url={run.job.portraitUrl} /> <a href={`#/jobs/${run.job.jobId}`}>portrait job</a>{" "}
              <StatusBadge status={run.job.status} />
            </dd>
          </div>
        )}
      </dl>
      {run.error && (
        <p className="error-text break">
          <span className="code">{run.error.code}</span> at {run.error.stage}: {run.error.message}
        </p>
      )}
      {run.status === "pending" && run.attempt > 1 && <p className="muted">Next attempt at {formatDateTime(run.runAt)}.</p>}

      <Timeline
        id="attempts-title"
        title="Transitions and Claude's answers"
        events={events}
        truncated={data.eventsTruncated}
        Badge={RunBadge}
        columns={[
          { label: "Model", className: "mono break", cell: (event) => event.details?.model ?? "—" },
          {
            label: "Tokens in / out",
            num: true,
            cell: ({ details: d }) =>
              d?.inputTokens !== undefined || d?.outputTokens !== undefined ? `${d?.inputTokens ?? "—"} / ${d?.outputTokens ?? "—"}` : "—",
          },
          { label: "Stop reason", cell: (event) => event.details?.stopReason ?? "—" },
          { label: "Duration", num: true, cell: (event) => formatMs(event.details?.durationMs) },
        ]}
        notes={({ details: d }) => [
          d?.problems?.length && `problems sent back: ${d.problems.join("; ")}`,
          d?.normalized && `${d.normalized} characters normalized`,
          d?.reason,
          d?.retryAt && `retry at ${formatDateTime(d.retryAt)}`,
          d?.anthropicRequestId && `request ${d.anthropicRequestId}`,
        ]}
      />
      <RawData values={{ "Run JSON": run, "Events JSON": events }} />
    </article>
  );
}
