import { useMutation, useQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import { describeError } from "./errors";
import { formatDateTime } from "./format";

/**
 * Starts a backfill (a portrait job for every story with neither a portrait nor
 * a job) and shows the newest run's progress live. The jobs it creates join the
 * queue as pending and show in the counts and the table as they are painted.
 */
export function Backfill() {
  const progress = useQuery(api.admin.backfillProgress);
  const start = useMutation(api.admin.backfill);
  const [error, setError] = useState("");
  const running = progress ? !progress.done : false;
  const onStart = async () => {
    setError("");
    try {
      await start({});
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <section className="backfill" aria-label="Backfill">
      <button type="button" onClick={onStart} disabled={progress === undefined || running}>
        Backfill portraits
      </button>
      <span role="status" className={error ? "error-text" : "muted"} data-testid="backfill-progress">
        {error ||
          (progress === undefined
            ? "…"
            : progress === null
              ? "No backfill has run: stories written before this backend have no portrait job."
              : `${progress.done ? "Done" : "Scanning"}: ${progress.scanned} stories scanned, ${progress.created} jobs created` +
                ` (${progress.hadPortrait} had a portrait, ${progress.hadJob} a job)` +
                (progress.finishedAt !== undefined
                  ? `, finished ${formatDateTime(progress.finishedAt)}`
                  : `, started ${formatDateTime(progress.startedAt)}`))}
      </span>
    </section>
  );
}
