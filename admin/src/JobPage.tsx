import { useMutation, useQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import { formatBytes, formatDateTime, formatMs, formatTime } from "./format";
import { StatusBadge } from "./JobTable";

export function JobPage({ jobId }: { jobId: string }) {
  const data = useQuery(api.admin.getJob, { jobId });
  const retry = useMutation(api.admin.retryJob);
  const regenerate = useMutation(api.admin.regenerate);
  const [retryState, setRetryState] = useState("");

  if (data === undefined) {
    return (
      <p className="muted" role="status">
        Loading case file…
      </p>
    );
  }
  if (data === null) {
    return (
      <section className="panel">
        <h2>No such job</h2>
        <p className="muted">Nothing is filed under “{jobId}”.</p>
        <a href="#/">Back to all jobs</a>
      </section>
    );
  }
  const { job, story, portraitUrl, events } = data;
  const onRetry = async () => {
    setRetryState("Re-queueing…");
    try {
      setRetryState((await retry({ jobId: job._id })) === "queued" ? "Queued as a new attempt." : "The job is no longer failed.");
    } catch (error) {
      setRetryState((error as Error).message);
    }
  };

  const onRegenerate = async () => {
    setRetryState("Queueing a new portrait…");
    try {
      const result = await regenerate({ storyId: job.storyId });
      setRetryState(result === "queued" ? "Queued: the current portrait stays until the new one is stored." : result === "busy" ? "An attempt is already under way." : "The story is gone.");
    } catch (error) {
      setRetryState((error as Error).message);
    }
  };

  return (
    <article className="job" aria-labelledby="job-title">
      <a href="#/">← All jobs</a>
      <header className="job-head">
        <h2 id="job-title">{story?.title ?? "(story deleted)"}</h2>
        <StatusBadge status={job.status} />
        <span className="muted">attempt {job.attempt}</span>
        <span className="muted mono">{job._id}</span>
        {job.status === "failed" && (
          <button type="button" onClick={onRetry}>
            Retry job
          </button>
        )}
        {job.status === "stored" && story && (
          <button type="button" onClick={onRegenerate}>
            Regenerate portrait
          </button>
        )}
        <span role="status" className="muted">
          {retryState}
        </span>
      </header>
      {job.error && (
        <p className="error-text">
          <span className="code">{job.error.code}</span> at {job.error.step}: {job.error.message}
        </p>
      )}

      <div className="job-grid">
        <figure className="portrait">
          {portraitUrl ? (
            <img src={portraitUrl} alt={`Portrait of ${story?.patientName ?? "the patient"}`} width={256} height={256} />
          ) : (
            <div className="portrait-empty">{job.status === "failed" ? "No portrait: the job failed." : job.status === "stored" ? "Portrait deleted." : "Painting…"}</div>
          )}
          {story && (
            <figcaption>
              {story.patientName} · <span className="mono">{story.patientNumber}</span>
            </figcaption>
          )}
        </figure>
        {story ? (
          <section className="story" aria-label="Story">
            <p className="intro">{story.introduction}</p>
            <ol className="chapters">
              {story.chapters.map((chapter, i) => (
                <li key={i}>
                  <span className={`difficulty d-${chapter.difficulty}`}>{chapter.difficulty}</span> {chapter.text}
                </li>
              ))}
            </ol>
            <details>
              <summary>Image prompt</summary>
              <p className="mono">{story.imageGenerationPrompt}</p>
            </details>
          </section>
        ) : (
          <p className="muted">The story was deleted; its job and events stay for the audit.</p>
        )}
      </div>

      <section aria-labelledby="timeline-title">
        <h3 id="timeline-title">Timeline</h3>
        <div className="scroll">
          <table className="timeline">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Attempt</th>
                <th scope="col">Transition</th>
                <th scope="col">Step</th>
                <th scope="col">HTTP</th>
                <th scope="col">Recraft request</th>
                <th scope="col">Credits</th>
                <th scope="col">Bytes</th>
                <th scope="col">Notes</th>
              </tr>
            </thead>
            <tbody>
              {events.map((event, i) => {
                const d = event.details;
                const step = d?.durationMs ?? (i > 0 ? event.at - events[i - 1].at : undefined);
                const notes = [
                  event.error && `${event.error.code}: ${event.error.message}`,
                  d?.requestMs !== undefined && `request ${formatMs(d.requestMs)}, download ${formatMs(d.downloadMs)}`,
                  d?.contentType,
                  d?.reason,
                  d?.retryAt !== undefined && `next attempt at ${formatTime(d.retryAt)}`,
                ].filter(Boolean);
                return (
                  <tr key={event._id} className={event.to === "failed" ? "row-failed" : undefined}>
                    <td className="mono" title={formatDateTime(event.at)}>
                      {formatTime(event.at)}
                    </td>
                    <td className="num">{event.attempt}</td>
                    <td>
                      {event.from ? <StatusBadge status={event.from} /> : <span className="muted">new</span>} → <StatusBadge status={event.to} />
                    </td>
                    <td className="num">{formatMs(step)}</td>
                    <td className="num">{d?.httpStatus ?? event.error?.httpStatus ?? "—"}</td>
                    <td className="mono">{d?.recraftRequestId ?? "—"}</td>
                    <td className="num">{d?.credits ?? "—"}</td>
                    <td className="num">{formatBytes(d?.bytes)}</td>
                    <td>{notes.join(" · ")}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        {data.eventsTruncated && <p className="muted">Only the first {events.length} events are shown.</p>}
      </section>
    </article>
  );
}
