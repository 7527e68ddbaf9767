import { useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import type { FunctionReturnType } from "convex/server";
import { Loading } from "./Connection";
import { DataTable, type Column } from "./DataTable";
import { formatDateTime, formatMs, useKept, useMinute } from "./format";

type Hour = FunctionReturnType<typeof api.admin.queueMetrics>["hours"][number];

const HOUR_COLUMNS: Column<Hour>[] = [
  {
    label: "Hour",
    rowHeader: true,
    cell: (h) => (
      <>
        {formatDateTime(h.start).slice(0, 16)}–{formatDateTime(h.start + 3_600_000).slice(11, 16)}
      </>
    ),
  },
  { label: "Waiting", num: true, cell: (h) => (h.samples > 0 ? h.maxPending : "—") },
  { label: "In flight", num: true, cell: (h) => (h.samples > 0 ? h.maxInFlight : "—") },
  { label: "Attempts", num: true, cell: (h) => `${h.attempts}${h.attemptsCapped ? "+" : ""}` },
  { label: "p50", num: true, cell: (h) => formatMs(h.p50) },
  { label: "p95", num: true, cell: (h) => formatMs(h.p95) },
];

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
        <DataTable
          className="metrics stack"
          caption="last 24 hours, newest first; queue figures are the most seen in the hour's 5-minute snapshots"
          columns={HOUR_COLUMNS}
          rows={[...hours].reverse()}
          rowKey={(h) => h.start}
          rowAttributes={(h) => ({ "data-hour": h.start })}
        />
      )}
    </section>
  );
}
