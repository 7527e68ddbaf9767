import { useState } from "react";

/** A value as indented JSON, with a button that copies exactly that text. */
function RawJson({ label, value }: { label: string; value: unknown }) {
  const text = JSON.stringify(value, null, 2);
  const [note, setNote] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setNote("Copied.");
    } catch {
      setNote("The browser refused the clipboard: select the text and copy it.");
    }
  };
  return (
    <details className="raw">
      <summary>{label}</summary>
      <div className="raw-actions">
        <button type="button" onClick={copy} aria-label={`Copy ${label}`}>
          Copy
        </button>
        <span role="status" className="muted">
          {note}
        </span>
      </div>
      <pre className="mono">{text}</pre>
    </details>
  );
}

/** A page's "Raw data" section: one copyable JSON block per labelled value. */
export function RawData({ values }: { values: Record<string, unknown> }) {
  return (
    <section aria-labelledby="raw-title" className="raw-section">
      <h3 id="raw-title">Raw data</h3>
      {Object.entries(values).map(([label, value]) => (
        <RawJson key={label} label={label} value={value} />
      ))}
    </section>
  );
}
