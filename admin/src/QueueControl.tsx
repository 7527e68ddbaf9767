import { useMutation, useQuery } from "convex/react";
import { useState, type FormEvent } from "react";
import { api } from "../../convex/_generated/api";
import { describeError } from "./errors";
import { Time } from "./Time";

/**
 * The portrait queue's control, the same for every operator (live): pause
 * (no new job starts; those in flight finish) and resume, and a ceiling on
 * jobs in flight under the dispatcher's own limit. Each change is recorded
 * with who made it; the latest are listed.
 */
export function QueueControl() {
  const state = useQuery(api.admin.queueState);
  const setPaused = useMutation(api.admin.setQueuePaused);
  const setCeiling = useMutation(api.admin.setConcurrencyCeiling);
  const [ceiling, setCeilingInput] = useState("");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);

  const act = async (change: () => Promise<boolean>, done: string) => {
    setBusy(true);
    setNote("");
    try {
      setNote((await change()) ? done : "Nothing to change.");
    } catch (error) {
      setNote(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  const submitCeiling = (event: FormEvent) => {
    event.preventDefault();
    const text = ceiling.trim();
    const value = text === "" ? null : Number(text);
    void act(() => setCeiling({ ceiling: value }), value === null ? "Ceiling removed." : `Ceiling set to ${value}.`).then(() =>
      setCeilingInput(""),
    );
  };

  if (state === undefined) return <section className="queue-control" aria-label="Portrait queue" aria-busy="true" />;
  const limit = state.maxConcurrency ?? state.configuredMax;
  return (
    <section className={state.paused ? "queue-control paused" : "queue-control"} aria-labelledby="queue-title">
      <h3 id="queue-title" className="visually-hidden">
        Portrait queue
      </h3>
      <p className="queue-state" data-testid="queue-state">
        <strong>{state.paused ? "Paused" : "Running"}</strong>
        {state.paused ? ": no new job starts; jobs in flight finish." : ""}
        {" · "}
        {state.maxConcurrency !== null
          ? `at most ${state.maxConcurrency} in flight (operator ceiling)`
          : `at most ${state.configuredMax} in flight (configured)`}
        {state.adaptiveLimit !== null &&
          state.inFlight !== null &&
          ` · now ${state.inFlight}, adaptive limit ${Math.min(state.adaptiveLimit, limit)}`}
      </p>
      <button
        type="button"
        className={state.paused ? "primary" : undefined}
        disabled={busy}
        onClick={() => act(() => setPaused({ paused: !state.paused }), state.paused ? "Resumed." : "Paused.")}
      >
        {state.paused ? "Resume queue" : "Pause queue"}
      </button>
      <form className="ceiling" onSubmit={submitCeiling}>
        <label htmlFor="ceiling">Max in flight</label>
        <input
          id="ceiling"
          type="number"
          inputMode="numeric"
          min={1}
          max={state.configuredMax}
          value={ceiling}
          onChange={(e) => setCeilingInput(e.target.value)}
          placeholder={String(limit)}
        />
        <button type="submit" disabled={busy}>
          Set
        </button>
      </form>
      <span role="status" className="muted">
        {note}
      </span>
      {state.changes.length > 0 && (
        <details className="queue-changes">
          <summary>Recent changes</summary>
          <ul aria-label="Recent changes">
            {state.changes.map((change, i) => (
              <li key={`${change.at}-${i}`}>
                <Time at={change.at} /> {change.by}: {change.paused ? "paused" : "running"},{" "}
                {change.maxConcurrency === null ? "no ceiling" : `ceiling ${change.maxConcurrency}`}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
