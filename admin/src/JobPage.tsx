import { useMutation, useQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import { ActionButton } from "./ActionButton";
import { formatBytes, formatDateTime, formatMs } from "./format";
import { StatusBadge } from "./JobTable";
import { RawData } from "./RawJson";
import { NoSuchRecord, RecordTimes } from "./RecordPage";
import { Timeline } from "./Timeline";
import { Time } from "./Time";
import { Loading } from "./Connection";
import { ViewHeading } from "./ViewHeading";

/** Cancels a pending or requested job, or discards a failed one: it ends `cancelled`, its events kept. */
function CancelButton({ jobId, status }: { jobId: string; status: string }) {
  const cancel = useMutation(api.admin.cancelJob);
  const discard = status === "failed";
  const run = async () =>
    (await cancel({ jobId })) === "cancelled"
      ? discard
        ? "Discarded: the job leaves the failure views; its events stay."
        : "Cancelled: nothing more is sent for this attempt; its events stay."
      : "The job can no longer be cancelled: it has moved on.";
  const shown = status === "pending" || status === "requested" || status === "failed";
  return (
    <ActionButton
      label={discard ? "Discard" : "Cancel job"}
      shown={shown}
      busyNote={discard ? "Discarding…" : "Cancelling…"}
      run={run}
      testId="cancel-note"
    />
  );
}

function RetryButton({ jobId, failed }: { jobId: string; failed: boolean }) {
  const retry = useMutation(api.admin.retryJob);
  const run = async () =>
    (await retry({ jobId })) === "queued"
      ? "Queued as a new attempt."
      : "The job is no longer failed: someone or something retried it already.";
  return <ActionButton label="Retry job" shown={failed} busyNote="Re-queueing…" run={run} testId="retry-note" />;
}

type JobView = { status: string; attempt: number; error?: { code: string } };

/**
 * A new portrait for a stored job: the story keeps its current one until the
 * new one is stored. The note follows the attempt it queued: once that
 * attempt has failed or been stored, the note says so.
 */
function RegenerateButton({
  storyId,
  stored,
  job,
  portraitAttempt,
}: {
  storyId: string;
  stored: boolean;
  job: JobView;
  portraitAttempt: number | null;
}) {
  const regenerate = useMutation(api.admin.regenerate);
  const [queuedAttempt, setQueuedAttempt] = useState<number | null>(null);
  const notes = {
    queued: "Queued: the current portrait stays until the new one is stored.",
    busy: "An attempt is already under way.",
    story_missing: "The story is gone.",
  };
  const run = async () => {
    const next = job.attempt + 1;
    const result = await regenerate({ storyId });
    if (result === "queued") setQueuedAttempt(next);
    return notes[result];
  };
  const note = (text: string) => {
    if (queuedAttempt === null || job.attempt !== queuedAttempt) return text;
    if (job.status === "failed") {
      const kept = portraitAttempt !== null ? `the portrait from attempt ${portraitAttempt} stays` : "no portrait is kept";
      return `Attempt ${queuedAttempt} failed (${job.error?.code ?? "error"}): ${kept}.`;
    }
    if (job.status === "stored") return `Attempt ${queuedAttempt} stored the new portrait.`;
    return text;
  };
  return (
    <ActionButton
      label="Regenerate portrait"
      shown={stored}
      busyNote="Queueing a new portrait…"
      run={run}
      testId="regenerate-note"
      note={note}
    />
  );
}

export function JobPage({ jobId }: { jobId: string }) {
  const data = useQuery(api.admin.getJob, { jobId });

  if (data === undefined) {
    return <Loading what="case file" />;
  }
  if (data === null) {
    return <NoSuchRecord what="job" id={jobId} back={{ href: "#/", label: "Back to all jobs" }} />;
  }
  const { job, story, portraitUrl, portraitAttempt, portraitStoredAt, events } = data;
  const title = story?.title ?? "(story deleted)";

  return (
    <article className="job" aria-labelledby="view-title">
      <a href="#/">← All jobs</a>
      <header className="job-head">
        <ViewHeading id="view-title" title={`Job: ${title}`} className="break">
          {title}
        </ViewHeading>
        <StatusBadge status={job.status} />
        <span className="muted">attempt {job.attempt}</span>
        <span className="muted mono break">{job._id}</span>
        {/* Always mounted, so its note stays once the button goes (the job is no longer failed). */}
        <RetryButton jobId={job._id} failed={job.status === "failed" || job.status === "cancelled"} />
        <CancelButton jobId={job._id} status={job.status} />
        <RegenerateButton
          storyId={job.storyId}
          stored={job.status === "stored" && story !== null}
          job={job}
          portraitAttempt={portraitAttempt}
        />
      </header>
      <dl className="job-times">
        <RecordTimes createdAt={job.createdAt} updatedAt={job.updatedAt} />
      </dl>
      {job.error && (
        <p className="error-text break">
          <span className="code">{job.error.code}</span> at {job.error.step}: {job.error.message}
        </p>
      )}

      <div className="job-grid">
        <figure className={portraitUrl ? "portrait" : "portrait portrait-none"}>
          {portraitUrl ? (
            <img src={portraitUrl} alt={`Portrait of ${story?.patientName ?? "the patient"}`} width={256} height={256} />
          ) : (
            <div className="portrait-empty">
              {job.status === "failed"
                ? "No portrait: the job failed."
                : job.status === "cancelled"
                  ? "No portrait: the job was cancelled."
                  : job.status === "stored"
                    ? "Portrait deleted."
                    : "Painting…"}
            </div>
          )}
          {(story || portraitAttempt !== null) && (
            <figcaption>
              {story && (
                <>
                  {story.patientName} · <span className="mono">{story.patientNumber}</span>
                </>
              )}
              {portraitAttempt !== null && (
                <div className="muted" data-testid="portrait-attempt">
                  Painted by attempt {portraitAttempt}
                  {portraitStoredAt !== null && (
                    <>
                      , stored <Time at={portraitStoredAt} />
                    </>
                  )}
                  {job.attempt !== portraitAttempt && ` (the job is on attempt ${job.attempt}, ${job.status})`}
                </div>
              )}
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

      <Timeline
        id="timeline-title"
        title="Timeline"
        events={events}
        truncated={data.eventsTruncated}
        Badge={StatusBadge}
        columns={[
          {
            label: "Step",
            num: true,
            cell: (event, i) => formatMs(event.details?.durationMs ?? (i > 0 ? event.at - events[i - 1]!.at : undefined)),
          },
          { label: "HTTP", num: true, cell: (event) => event.details?.httpStatus ?? event.error?.httpStatus ?? "—" },
          { label: "Recraft request", className: "mono break", cell: (event) => event.details?.recraftRequestId ?? "—" },
          { label: "Credits", num: true, cell: (event) => event.details?.credits ?? "—" },
          { label: "Bytes", num: true, cell: (event) => formatBytes(event.details?.bytes) },
        ]}
        notes={({ details: d }) => [
          d?.requestMs !== undefined && `request ${formatMs(d.requestMs)}, download ${formatMs(d.downloadMs)}`,
          d?.contentType,
          d?.reason,
          d?.retryAt !== undefined && `next attempt at ${formatDateTime(d.retryAt)}`,
        ]}
      />

      <RawData values={{ "Job JSON": job, "Events JSON": events }} />
    </article>
  );
}
