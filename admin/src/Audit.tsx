import { useMutation, useQuery } from "convex/react";
import { useState } from "react";
import { api } from "../../convex/_generated/api";
import type { ErrorCode } from "../../convex/validators";
import { formatDateTime, formatMs } from "./format";

const STEP_LABELS = {
  queue: "Queue wait (pending → requested)",
  request: "Recraft request",
  download: "Image download",
  store: "Store file",
  total: "Total (created → stored)",
} as const;

export function Failures() {
  const summary = useQuery(api.admin.failureSummary);
  const retryFailed = useMutation(api.admin.retryFailed);
  const [notes, setNotes] = useState<Partial<Record<ErrorCode, string>>>({});

  const retry = async (code: ErrorCode) => {
    setNotes((n) => ({ ...n, [code]: "Re-queueing…" }));
    try {
      const queued = await retryFailed({ code });
      setNotes((n) => ({ ...n, [code]: `Queued ${queued} job${queued === 1 ? "" : "s"}.` }));
    } catch (error) {
      setNotes((n) => ({ ...n, [code]: (error as Error).message }));
    }
  };

  return (
    <section className="panel" aria-labelledby="failures-title">
      <h2 id="failures-title">Failures in the last 24 hours</h2>
      {summary === undefined ? (
        <p className="muted" role="status">
          Loading failures…
        </p>
      ) : summary.codes.length === 0 ? (
        <p className="empty" role="status">
          No failures in the last 24 hours.
        </p>
      ) : (
        <div className="scroll">
          <table className="audit">
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Failures</th>
                <th scope="col">Jobs</th>
                <th scope="col">Still failed</th>
                <th scope="col">Latest message</th>
                <th scope="col">Latest</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {summary.codes.map((row) => (
                <tr key={row.code} data-code={row.code}>
                  <th scope="row">
                    <span className="code">{row.code}</span>
                  </th>
                  <td className="num">{row.count}</td>
                  <td className="num">{row.jobs}</td>
                  <td className="num" data-testid={`still-failed-${row.code}`}>
                    {row.stillFailed}
                  </td>
                  <td className="message">{row.latestMessage}</td>
                  <td>{formatDateTime(row.latestAt)}</td>
                  <td className="actions">
                    <a href={`#/?code=${row.code}`}>View jobs</a>
                    <button type="button" onClick={() => retry(row.code)} disabled={row.stillFailed === 0} aria-label={`Retry all ${row.code} jobs`}>
                      Retry all
                    </button>
                    <span role="status" className="muted">
                      {notes[row.code]}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {summary?.truncated && <p className="muted">More failures than the summary reads: counts are a lower bound.</p>}
    </section>
  );
}

export function Latency() {
  const latency = useQuery(api.admin.latency);
  return (
    <section className="panel" aria-labelledby="latency-title">
      <h2 id="latency-title">Step latency</h2>
      {latency === undefined ? (
        <p className="muted" role="status">
          Loading latency…
        </p>
      ) : latency.sample === 0 ? (
        <p className="empty" role="status">
          No stored portraits yet.
        </p>
      ) : (
        <table className="latency">
          <caption className="muted">
            over the last {latency.sample} stored portrait{latency.sample === 1 ? "" : "s"}
          </caption>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">p50</th>
              <th scope="col">p95</th>
              <th scope="col">Samples</th>
            </tr>
          </thead>
          <tbody>
            {latency.steps.map((s) => (
              <tr key={s.step} data-step={s.step}>
                <th scope="row">{STEP_LABELS[s.step]}</th>
                <td className="num">{formatMs(s.p50)}</td>
                <td className="num">{formatMs(s.p95)}</td>
                <td className="num">{s.count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Audit() {
  return (
    <>
      <Failures />
      <Latency />
    </>
  );
}
