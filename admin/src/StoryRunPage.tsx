import { useMutation, useQuery } from "convex/react";
import { useEffect, useRef, useState } from "react";
import { api } from "../../convex/_generated/api";
import { describeError } from "./errors";
import { formatDateTime, formatMs } from "./format";
import { StatusBadge, Thumb } from "./JobTable";
import { RawData } from "./RawJson";
import { RunBadge } from "./StoryRuns";
import { Time } from "./Time";
import { Timeline } from "./Timeline";
import { Loading } from "./Connection";
import { ViewHeading } from "./ViewHeading";

/** Retries a failed story run as a new attempt; once the run moves on, focus goes to the note (the button goes). */
function RetryRunButton({ runId, failed }: { runId: string; failed: boolean }) {
  const retry = useMutation(api.admin.retryStoryRun);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const hadFocus = useRef(false);
  const noteRef = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    if (!failed && hadFocus.current) {
      hadFocus.current = false;
      if (document.activeElement === null || document.activeElement === document.body) noteRef.current?.focus();
    }
  }, [failed]);
  const onClick = async () => {
    if (busy) return;
    setBusy(true);
    setNote("Re-queueing…");
    try {
      setNote((await retry({ runId })) === "queued" ? "Queued as a new attempt: Claude is asked again." : "The run is no longer failed.");
    } catch (error) {
      setNote(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {failed && (
        <button
          type="button"
          onClick={onClick}
          disabled={busy}
          onFocus={() => (hadFocus.current = true)}
          onBlur={() => (hadFocus.current = false)}
        >
          Retry story run
        </button>
      )}
      <span role="status" className="muted" tabIndex={-1} ref={noteRef} data-testid="retry-run-note">
        {note}
      </span>
    </>
  );
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
    return (
      <section className="panel">
        <ViewHeading id="view-title" title="No such story run">
          No such story run
        </ViewHeading>
        <p className="muted">
          Nothing is filed under “<span className="break">{runId}</span>”.
        </p>
        <a href="#/stories">Back to story runs</a>
      </section>
    );
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
        <div>
          <dt>Created</dt>
          <dd>
            <Time at={run.createdAt} />
          </dd>
        </div>
        <div>
          <dt>Last change</dt>
          <dd>
            <Time at={run.updatedAt} />
          </dd>
        </div>
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
