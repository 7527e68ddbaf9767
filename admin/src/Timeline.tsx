import type { ReactNode } from "react";
import { DataTable, type Column } from "./DataTable";
import { Time } from "./Time";

/** What a portrait job's and a story run's transition events share. */
type Transition = {
  _id: string;
  at: number;
  attempt: number;
  from: string | null;
  to: string;
  error?: { code: string; message: string };
};

/**
 * A job's or a story run's transitions in order: when, which attempt, from →
 * to, the page's own `columns`, then notes (the error first, then the page's
 * `notes`, the empty ones left out). Failed transitions are marked.
 */
export function Timeline<Event extends Transition>({
  id,
  title,
  events,
  truncated,
  Badge,
  columns,
  notes,
}: {
  id: string;
  title: string;
  events: Event[];
  /** More events exist than were read. */
  truncated: boolean;
  Badge: (props: { status: Event["to"] }) => ReactNode;
  columns: Column<Event>[];
  notes: (event: Event, index: number) => unknown[];
}) {
  const all: Column<Event>[] = [
    { label: "Time", cell: (event) => <Time at={event.at} ms /> },
    { label: "Attempt", num: true, cell: (event) => event.attempt },
    {
      label: "Transition",
      cell: (event) => (
        <>
          {event.from ? <Badge status={event.from} /> : <span className="muted">new</span>} → <Badge status={event.to} />
        </>
      ),
    },
    ...columns,
    {
      label: "Notes",
      className: "break",
      cell: (event, index) =>
        [event.error && `${event.error.code}: ${event.error.message}`, ...notes(event, index)].filter(Boolean).join(" · "),
    },
  ];
  return (
    <section aria-labelledby={id}>
      <h3 id={id}>{title}</h3>
      <DataTable
        className="timeline stack"
        columns={all}
        rows={events}
        rowKey={(event) => event._id}
        rowAttributes={(event) => ({ className: event.to === "failed" ? "row-failed" : undefined, "data-to": event.to })}
      />
      {truncated && <p className="muted">Only the first {events.length} events are shown.</p>}
    </section>
  );
}
