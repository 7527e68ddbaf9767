import { useEffect, useRef, useState } from "react";
import { describeError } from "./errors";

/**
 * A button whose action runs once per click burst: a second click while the
 * first is in flight does nothing. Its note stays once the button goes (e.g.
 * the job is no longer failed), so it is always mounted; if the button had
 * focus when it went, focus moves to the note rather than to the page's body.
 */
export function ActionButton({
  label,
  shown,
  busyNote,
  run,
  testId,
  note: shownNote,
}: {
  label: string;
  shown: boolean;
  busyNote: string;
  run: () => Promise<string>;
  testId: string;
  note?: (note: string) => string;
}) {
  const inFlight = useRef(false);
  const hadFocus = useRef(false);
  const noteRef = useRef<HTMLSpanElement>(null);
  const [state, setState] = useState<{ busy: boolean; note: string }>({ busy: false, note: "" });
  useEffect(() => {
    if (!shown && hadFocus.current) {
      hadFocus.current = false;
      if (document.activeElement === null || document.activeElement === document.body) noteRef.current?.focus();
    }
  }, [shown]);
  const onClick = async () => {
    if (inFlight.current) return;
    inFlight.current = true;
    setState({ busy: true, note: busyNote });
    try {
      setState({ busy: false, note: await run() });
    } catch (error) {
      setState({ busy: false, note: describeError(error) });
    } finally {
      inFlight.current = false;
    }
  };
  return (
    <>
      {shown && (
        <button
          type="button"
          onClick={onClick}
          disabled={state.busy}
          onFocus={() => (hadFocus.current = true)}
          onBlur={() => (hadFocus.current = false)}
        >
          {label}
        </button>
      )}
      <span role="status" className="muted" data-testid={testId} tabIndex={-1} ref={noteRef}>
        {shownNote ? shownNote(state.note) : state.note}
      </span>
    </>
  );
}
