import { useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import { Loading } from "./Connection";
import { formatDateTime, formatMs, useKept, useMinute } from "./format";

/**
 * The queue per hour over the last 24 hours, beside the stored/failed chart:
 * most jobs waiting and in flight (from the 5-minute snapshots) and the p50 /
 * p95 of an attempt's request + download (from the `downloaded` events).
 * Bounded reads (convex/admin.ts queueMetrics). Hours with nothing are left out.
 */
export function QueueMetrics() {
  const now = useMinute();
  const data = useKept(useQuery(api.admin.queueMetrics, { now }), "metrics");
  const hours = data?.hours.filter((h) => h.samples > 0 || h.attempts > 0) ?? [];
  return (
    <section className="panel" aria-labelledby="metrics-title">
      <h3 id="metrics-title">Queue per hour</h3>
      {data === undefined ? (
        <Loading what="queue metrics" />
      ) : hours.length === 0 ? (
        <p className="empty" role="status">
          No snapshots or attempts in the last 24 hours.
        </p>
      ) : (
        <table className="metrics stack">
          <caption className="muted">last 24 hours, newest first; queue figures are the most seen in the hour's 5-minute snapshots</caption>
          <thead>
            <tr>
              <th scope="col">Hour</th>
              <th scope="col" className="num">
                Waiting
              </th>
              <th scope="col" className="num">
                In flight
              </th>
              <th scope="col" className="num">
                Attempts
              </th>
              <th scope="col" className="num">
                p50
              </th>
              <th scope="col" className="num">
                p95
              </th>
            </tr>
          </thead>
          <tbody>
            {[...hours].reverse().map((h) => (
              <tr key={h.start} data-hour={h.start}>
                <th scope="row" data-label="Hour">
                  {formatDateTime(h.start).slice(0, 16)}–{formatDateTime(h.start + 3_600_000).slice(11, 16)}
                </th>
                <td data-label="Waiting" className="num">
                  {h.samples > 0 ? h.maxPending : "—"}
                </td>
                <td data-label="In flight" className="num">
                  {h.samples > 0 ? h.maxInFlight : "—"}
                </td>
                <td data-label="Attempts" className="num">
                  {h.attempts}
                  {h.attemptsCapped ? "+" : ""}
                </td>
                <td data-label="p50" className="num">
                  {formatMs(h.p50)}
                </td>
                <td data-label="p95" className="num">
                  {formatMs(h.p95)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
