import { formatDateTime } from "./format";

/** A moment, written out (date and 24-hour time), never only in a tooltip. */
export function Time({ at, ms = false }: { at: number | null | undefined; ms?: boolean }) {
  if (at === null || at === undefined) return <span className="muted">—</span>;
  const [date, time] = formatDateTime(at, { ms }).split(" ");
  return (
    <time dateTime={new Date(at).toISOString()} className="when">
      <span className="when-date">{date}</span> <span className="when-time">{time}</span>
    </time>
  );
}
