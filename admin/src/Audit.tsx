import { useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import { ActivityChart } from "./ActivityChart";
import { BulkRetry } from "./BulkRetry";
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

export function Failures({ route }: { route: AuditRoute }) {
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
        <table className="audit stack">
          <thead>
            <tr>
              <th scope="col">Code</th>
              <th scope="col" className="num">
                Failures
              </th>
              <th scope="col" className="num">
                Jobs
              </th>
              <th scope="col" className="num">
                Still failed
              </th>
              <th scope="col">Latest message</th>
              <th scope="col">Latest</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {summary.codes.map((row) => {
              const open = route.code === row.code;
              return (
                <tr key={row.code} data-code={row.code}>
                  <th scope="row" data-label="Code">
                    <span className="code">{row.code}</span>
                  </th>
                  <td data-label="Failures" className="num">
                    {row.count}
                  </td>
                  <td data-label="Jobs" className="num">
                    {row.jobs}
                  </td>
                  <td data-label="Still failed" className="num" data-testid={`still-failed-${row.code}`}>
                    {row.stillFailed}
                  </td>
                  <td data-label="Latest message" className="message break">
                    {row.latestMessage}
                  </td>
                  <td data-label="Latest">
                    <Time at={row.latestAt} />
                  </td>
                  <td data-label="Actions" className="actions">
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
                            <StatusBadge status={job.status} />{" "}
                            <a href={formatRoute({ page: "job", id: job.jobId })}>{job.title ?? "(story deleted)"}</a>
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
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {summary?.truncated && <p className="muted">More failures than the summary reads: counts are a lower bound.</p>}
    </section>
  );
}

export function Latency() {
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
        <table className="latency">
          <caption className="muted">
            over the last {latency.sample} stored portrait{latency.sample === 1 ? "" : "s"}
          </caption>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col" className="num">
                p50
              </th>
              <th scope="col" className="num">
                p95
              </th>
              <th scope="col" className="num">
                Samples
              </th>
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
