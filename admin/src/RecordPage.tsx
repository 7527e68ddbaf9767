import { Time } from "./Time";
import { ViewHeading } from "./ViewHeading";

/** What a job's or a story run's page shows for an id that names nothing, with the way back to its list. */
export function NoSuchRecord({ what, id, back }: { what: string; id: string; back: { href: string; label: string } }) {
  return (
    <section className="panel">
      <ViewHeading id="view-title" title={`No such ${what}`}>
        No such {what}
      </ViewHeading>
      <p className="muted">
        Nothing is filed under “<span className="break">{id}</span>”.
      </p>
      <a href={back.href}>{back.label}</a>
    </section>
  );
}

/** A record's created and last-change times, as entries of its page's `dl.job-times`. */
export function RecordTimes({ createdAt, updatedAt }: { createdAt: number; updatedAt: number }) {
  return (
    <>
      <div>
        <dt>Created</dt>
        <dd>
          <Time at={createdAt} />
        </dd>
      </div>
      <div>
        <dt>Last change</dt>
        <dd>
          <Time at={updatedAt} />
        </dd>
      </div>
    </>
  );
}
