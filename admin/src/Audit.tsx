import { useQuery } from "convex/react";
import type { FunctionReturnType } from "convex/server";
import { api } from "../../convex/_generated/api";
import { ActivityChart } from "./ActivityChart";
import { BulkRetry } from "./BulkRetry";
import { DataTable, type Column } from "./DataTable";
import { QueueMetrics } from "./QueueMetrics";
import { formatMs, useKept, useMinute } from "./format";
import { StatusBadge } from "./JobTable";
import { formatRoute, patchRoute, type Route } from "./route";
import { Time } from "./Time";
import { Loading } from "./Connection";
import { ViewHeading } from "./ViewHeading";

type AuditRoute = Extract<Route, { page: "audit" }>;

const STEP_LABELS = {
  queue: "Queue wait (pending → requested)",
  request: "Recraft request",
  download: "Image download",
  store: "Store file",
  total: "Total (created → stored)",
} as const;

type FailureRow = FunctionReturnType<typeof api.admin.failureSummary>["codes"][number];
type StepRow = FunctionReturnType<typeof api.admin.latency>["steps"][number];

function failureColumns(route: AuditRoute): Column<FailureRow>[] {
  return [
    { label: "Code", rowHeader: true, cell: (row) => <span className="code">{row.code}</span> },
    { label: "Failures", num: true, cell: (row) => row.count },
    { label: "Jobs", num: true, cell: (row) => row.jobs },
    {
      label: "Still failed",
      num: true,
      cell: (row) => row.stillFailed,
      cellAttributes: (row) => ({ "data-testid": `still-failed-${row.code}` }),
    },
    { label: "Latest message", className: "message break", cell: (row) => row.latestMessage },
    { label: "Latest", cell: (row) => <Time at={row.latestAt} /> },
    { label: "Actions", className: "actions", cell: (row) => <FailureActions route={route} row={row} /> },
  ];
}

/** A code's jobs, shown in place, and a retry of all of them. */
function FailureActions({ route, row }: { route: AuditRoute; row: FailureRow }) {
  const open = route.code === row.code;
  return (
    <>
      <div className="action-row">
        <a
          href={formatRoute({ ...route, code: open ? undefined : row.code })}
          aria-expanded={open}
          aria-controls={`jobs-${row.code}`}
          onClick={(e) => {
            e.preventDefault();
            patchRoute(route, { code: open ? undefined : row.code });
          }}
        >
          {open ? "Hide jobs" : "View jobs"}
        </a>
        {/* Every job failed with the code now, whatever its age: the confirmation counts them. */}
        <BulkRetry
          filter={{ code: row.code }}
          label="Retry all"
          ariaLabel={`Retry all ${row.code} jobs`}
          what={<span className="code">{row.code}</span>}
        />
      </div>
      {open && (
        <ul className="code-jobs" id={`jobs-${row.code}`} aria-label={`Jobs that failed with ${row.code}`}>
          {row.recentJobs.map((job) => (
            <li key={job.jobId}>
              <StatusBadge status={job.status} /> <a href={formatRoute({ page: "job", id: job.jobId })}>{job.title ?? "(story deleted)"}</a>
            </li>
          ))}
          {row.jobs > row.recentJobs.length && <li className="muted">…and {row.jobs - row.recentJobs.length} more</li>}
          {row.stillFailed > 0 && (
            <li>
              <a href={formatRoute({ page: "jobs", code: row.code })}>All jobs failed with {row.code} now</a>
            </li>
          )}
        </ul>
      )}
    </>
  );
}

const LATENCY_COLUMNS: Column<StepRow>[] = [
  { label: "Step", rowHeader: true, cell: (s) => STEP_LABELS[s.step] },
  { label: "p50", num: true, cell: (s) => formatMs(s.p50) },
  { label: "p95", num: true, cell: (s) => formatMs(s.p95) },
  { label: "Samples", num: true, cell: (s) => s.count },
];

function Failures({ route }: { route: AuditRoute }) {
  const now = useMinute();
  const summary = useKept(useQuery(api.admin.failureSummary, { now }), "failures");

  return (
    <section className="panel" aria-labelledby="failures-title">
      <h3 id="failures-title">Failures in the last 24 hours</h3>
      {summary === undefined ? (
        <Loading what="failures" />
      ) : summary.codes.length === 0 ? (
        <p className="empty" role="status">
          No failures in the last 24 hours.
        </p>
      ) : (
        <DataTable
          className="audit stack"
          columns={failureColumns(route)}
          rows={summary.codes}
          rowKey={(row) => row.code}
          rowAttributes={(row) => ({ "data-code": row.code })}
        />
      )}
      {summary?.truncated && <p className="muted">More failures than the summary reads: counts are a lower bound.</p>}
    </section>
  );
}

function Latency() {
  const latency = useQuery(api.admin.latency);
  return (
    <section className="panel" aria-labelledby="latency-title">
      <h3 id="latency-title">Step latency</h3>
      {latency === undefined ? (
        <Loading what="latency" />
      ) : latency.sample === 0 ? (
        <p className="empty" role="status">
          No stored portraits yet.
        </p>
      ) : (
        <DataTable
          className="latency"
          caption={`over the last ${latency.sample} stored portrait${latency.sample === 1 ? "" : "s"}`}
          columns={LATENCY_COLUMNS}
          rows={latency.steps}
          rowKey={(s) => s.step}
          rowAttributes={(s) => ({ "data-step": s.step })}
        />
      )}
    </section>
  );
}

export function Audit({ route = { page: "audit", range: "24h" } }: { route?: AuditRoute }) {
  return (
    <>
      <ViewHeading id="view-title" title="Activity & failures" className="view-title">
        Activity &amp; failures
      </ViewHeading>
      <ActivityChart route={route} />
      <QueueMetrics />
      <Failures route={route} />
      <Latency />
    </>
  );
}
