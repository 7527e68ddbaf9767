import { useMutation, useQuery } from "convex/react";
import { useEffect, useRef, useState, type ReactNode } from "react";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import type { ErrorCode } from "../../convex/validators";
import { describeError } from "./errors";

export type RetryFilter = { code?: ErrorCode; httpStatus?: number; since?: number };

const jobs = (n: number) => `${n.toLocaleString("en")} job${n === 1 ? "" : "s"}`;

/** Follows a bulk retry to its end: "Re-queueing… N so far", then the exact total. */
function Progress({ id }: { id: Id<"bulkRetries"> }) {
  const run = useQuery(api.admin.bulkRetry, { id });
  if (!run) return <>Re-queueing…</>;
  return <>{run.done ? `Queued ${jobs(run.queued)}.` : `Re-queueing… ${jobs(run.queued)} so far.`}</>;
}

/**
 * "Retry all" for the failed jobs matching `filter`: asks first, with the
 * exact number it will re-queue (counted live), and says the exact number it
 * did. Focus goes to the confirmation, back to the button on Cancel or
 * Escape, and to the result once confirmed: never to the page's body.
 */
export function BulkRetry({ filter, label, ariaLabel, what }: { filter: RetryFilter; label: string; ariaLabel: string; what: ReactNode }) {
  const [state, setState] = useState<
    { kind: "idle" | "confirming" | "starting" } | { kind: "running"; id: Id<"bulkRetries"> } | { kind: "error"; message: string }
  >({ kind: "idle" });
  const retryMatching = useMutation(api.admin.retryMatching);
  const count = useQuery(api.admin.countRetryable, state.kind === "confirming" ? { filter } : "skip");
  const opener = useRef<HTMLButtonElement>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const note = useRef<HTMLSpanElement>(null);
  const [focus, setFocus] = useState<"opener" | "note" | null>(null);

  useEffect(() => {
    if (focus === "opener") opener.current?.focus();
    if (focus === "note") note.current?.focus();
    if (focus) setFocus(null);
  }, [focus]);
  useEffect(() => {
    if (state.kind === "confirming" && count !== undefined) (count.count > 0 ? confirmButton : cancelButton).current?.focus();
  }, [state.kind, count === undefined]);

  const cancel = () => {
    setState({ kind: "idle" });
    setFocus("opener");
  };
  const confirm = async () => {
    setState({ kind: "starting" });
    setFocus("note");
    try {
      setState({ kind: "running", id: await retryMatching({ filter }) });
    } catch (error) {
      setState({ kind: "error", message: describeError(error) });
    }
  };

  return (
    <>
      <button
        type="button"
        ref={opener}
        onClick={() => setState({ kind: "confirming" })}
        aria-label={ariaLabel}
        aria-expanded={state.kind === "confirming"}
      >
        {label}
      </button>
      <span role="status" className="muted" tabIndex={-1} ref={note} data-testid="bulk-retry-note">
        {state.kind === "starting" ? (
          "Re-queueing…"
        ) : state.kind === "running" ? (
          <Progress id={state.id} />
        ) : state.kind === "error" ? (
          state.message
        ) : (
          ""
        )}
      </span>
      {state.kind === "confirming" && (
        <div
          className="confirm"
          role="alertdialog"
          aria-label="Confirm bulk retry"
          onKeyDown={(e) => {
            if (e.key === "Escape") cancel();
          }}
        >
          <p>
            {count === undefined ? (
              "Counting the jobs this would re-queue…"
            ) : count.count === 0 ? (
              <>No job is failed with {what} now.</>
            ) : (
              <>
                Re-queue all {count.exact ? "" : "at least "}
                {jobs(count.count)} failed with {what} now, whatever their age? Each starts a new attempt.
              </>
            )}
          </p>
          {count !== undefined && count.count > 0 && (
            <button type="button" className="primary" ref={confirmButton} onClick={confirm}>
              Retry {count.exact ? "" : "at least "}
              {jobs(count.count)}
            </button>
          )}
          <button type="button" ref={cancelButton} onClick={cancel}>
            Cancel
          </button>
        </div>
      )}
    </>
  );
}
