import { useMutation, useQuery } from "convex/react";
import { Component, useState, type FormEvent, type MouseEvent, type ReactNode } from "react";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { Audit } from "./Audit";
import { ConnectionIndicator, OfflineBanner, useLinkStatus } from "./Connection";
import { describeError, isForbidden } from "./errors";
import { STATUSES, zoneLabel } from "./format";
import { JobPage } from "./JobPage";
import { Backfill } from "./Backfill";
import { QueueControl } from "./QueueControl";
import { JobTable } from "./JobTable";
import { FollowRun, StoryRuns } from "./StoryRuns";
import { StoryRunPage } from "./StoryRunPage";
import { formatRoute, useRoute, viewKey, type Route } from "./route";
import { ViewHeading } from "./ViewHeading";

/** Shows `fallback` for a thrown error; a "forbidden" is passed up unless `forbidden` is given. */
class Boundary extends Component<{ children: ReactNode; forbidden?: ReactNode }, { error?: Error }> {
  state: { error?: Error } = {};
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    if (isForbidden(error)) {
      if (this.props.forbidden) return this.props.forbidden;
      throw error;
    }
    return (
      <section className="panel error-panel" role="alert">
        <h2>Something went wrong</h2>
        <p>{describeError(error)}</p>
        <button type="button" onClick={() => this.setState({ error: undefined })}>
          Try again
        </button>
      </section>
    );
  }
}

/**
 * The refusal page. `signedIn` says whether the visitor has an identity at
 * all (the bridge knows; with an auth provider, pass its isAuthenticated):
 * an anonymous visitor is asked to sign in, not told their account is unlisted.
 */
function Forbidden({ bridgeAs, signedIn }: { bridgeAs?: string; signedIn?: boolean }) {
  return (
    <main className="forbidden" aria-labelledby="forbidden-title">
      <h1 id="forbidden-title">Restricted ward</h1>
      {signedIn === false ? (
        <p>This console is for staff only. You are not signed in: sign in with a staff account.</p>
      ) : signedIn === true ? (
        <>
          <p>This console is for staff only, and your account is not on the staff list.</p>
          <p className="muted">
            If you should have access, ask an administrator to add your account to ADMIN_SUBJECTS (or a verified email to ADMIN_EMAILS).
          </p>
        </>
      ) : (
        <p>This console is for staff only. Sign in with a staff account; if you are signed in, your account is not on the staff list.</p>
      )}
      {bridgeAs !== undefined && (
        <p className="muted">
          Local bridge: you are acting as “{bridgeAs}”. <a href={`?as=admin${window.location.hash}`}>Continue as the demo admin</a>
        </p>
      )}
    </main>
  );
}

/** Jobs per status; `stale` (offline) dims them like the view, so old counts never look live. */
export function Counts({ stale = false }: { stale?: boolean }) {
  const counts = useQuery(api.admin.statusCounts);
  return (
    <section className={stale ? "counts stale" : "counts"} aria-label="Jobs by status" aria-busy={counts === undefined}>
      {STATUSES.map((status) => (
        <a key={status} className={`count status-${status}`} href={formatRoute({ page: "jobs", status })} data-testid={`count-${status}`}>
          <span className="count-n">{counts ? counts[status].toLocaleString("en") : "…"}</span>
          <span className="count-label">{status}</span>
        </a>
      ))}
    </section>
  );
}

/** The longest theme a story run takes (convex/lib/storyRunMachine.ts MAX_HINT_CHARS). */
const MAX_THEME_CHARS = 200;

export function GenerateStory() {
  const generate = useMutation(api.admin.generateStory);
  const [hint, setHint] = useState("");
  const [state, setState] = useState<
    { kind: "idle" | "busy" } | { kind: "started"; runId: Id<"storyRuns"> } | { kind: "error"; message: string }
  >({
    kind: "idle",
  });
  const length = hint.trim().length;
  const tooLong = length > MAX_THEME_CHARS;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (state.kind === "busy" || tooLong) return;
    setState({ kind: "busy" });
    try {
      setState({ kind: "started", runId: await generate({ hint: hint.trim() || undefined }) });
      setHint("");
    } catch (error) {
      setState({ kind: "error", message: describeError(error) });
    }
  };
  return (
    <form className="generate" onSubmit={submit}>
      <label htmlFor="hint">Theme</label>
      {/* No maxLength: a pasted theme is never cut silently; the counter and the message say what to trim. */}
      <input
        id="hint"
        value={hint}
        onChange={(e) => setHint(e.target.value)}
        placeholder="optional, e.g. a drowned lighthouse"
        aria-describedby="hint-count"
        aria-invalid={tooLong}
      />
      <span id="hint-count" className={tooLong ? "error-text" : "muted"} data-testid="theme-count">
        {length} / {MAX_THEME_CHARS}
      </span>
      <button type="submit" className="primary" disabled={state.kind === "busy" || tooLong}>
        Generate story
      </button>
      <span role="status" className={state.kind === "error" || tooLong ? "error-text" : "muted"}>
        {tooLong ? (
          `The theme is ${length - MAX_THEME_CHARS} characters too long (at most ${MAX_THEME_CHARS}).`
        ) : state.kind === "busy" ? (
          "Starting a story run…"
        ) : state.kind === "started" ? (
          <FollowRun runId={state.runId} />
        ) : state.kind === "error" ? (
          state.message
        ) : (
          ""
        )}
      </span>
    </form>
  );
}

function BridgeBanner({ as }: { as: string }) {
  return (
    <div className="bridge-banner">
      Local bridge (development harness, embedded backend) · acting as <strong>{as}</strong> · switch to{" "}
      {["admin", "guest", "anon"]
        .filter((who) => who !== as)
        .map((who, i) => (
          <span key={who}>
            {i > 0 && " / "}
            <a href={`?as=${who}${window.location.hash}`}>{who}</a>
          </span>
        ))}
    </div>
  );
}

function NotFound({ hash }: { hash: string }) {
  return (
    <section className="panel">
      <ViewHeading id="view-title" title="Not found">
        Nothing at this address
      </ViewHeading>
      <p>
        The link <span className="mono break">#{hash}</span> does not lead to a view of this console.
      </p>
      <a href="#/">Go to all jobs</a>
    </section>
  );
}

/** The sections in the header. Add a view's link here and its case in `View`. */
const SECTIONS: { label: string; href: string; pages: Route["page"][] }[] = [
  { label: "Jobs", href: "#/", pages: ["jobs", "job"] },
  { label: "Story runs", href: "#/stories", pages: ["stories", "storyRun"] },
  { label: "Activity & failures", href: "#/audit", pages: ["audit"] },
];

function View({ route }: { route: Route }) {
  switch (route.page) {
    case "job":
      return <JobPage jobId={route.id} />;
    case "audit":
      return <Audit route={route} />;
    case "stories":
      return (
        <>
          <GenerateStory />
          <StoryRuns route={route} />
        </>
      );
    case "storyRun":
      return <StoryRunPage runId={route.id} />;
    case "notFound":
      return <NotFound hash={route.hash} />;
    case "jobs":
      return (
        <div className="jobs-view">
          <div className="tools">
            <GenerateStory />
            <Backfill />
          </div>
          <QueueControl />
          <JobTable route={route} />
        </div>
      );
  }
}

function skipToContent(event: MouseEvent) {
  event.preventDefault();
  const target = document.querySelector<HTMLElement>("#main h2[tabindex]") ?? document.getElementById("main");
  target?.focus();
}

function Layout({ route }: { route: Route }) {
  const link = useLinkStatus();
  return (
    <>
      <header className="top">
        <div className="brand">
          <h1>
            <a href="#/">Case File Portraits</a>
          </h1>
          <span className="muted">admin</span>
          <ConnectionIndicator status={link} />
        </div>
        <nav aria-label="Sections">
          {SECTIONS.map((section) => (
            <a key={section.href} href={section.href} aria-current={section.pages.includes(route.page) ? "page" : undefined}>
              {section.label}
            </a>
          ))}
        </nav>
      </header>
      <OfflineBanner status={link} />
      <Counts stale={link.kind === "offline"} />
      <main id="main" tabIndex={-1} className={link.kind === "offline" ? "stale" : undefined}>
        <Boundary key={viewKey(route)}>
          <View route={route} />
        </Boundary>
      </main>
      <footer className="muted foot">Times are local ({zoneLabel()}), 24-hour.</footer>
    </>
  );
}

export function App({ bridgeAs, signedIn }: { bridgeAs?: string; signedIn?: boolean }) {
  const route = useRoute();
  return (
    <>
      <a className="skip-link" href="#main" onClick={skipToContent}>
        Skip to content
      </a>
      {bridgeAs !== undefined && <BridgeBanner as={bridgeAs} />}
      <Boundary
        forbidden={<Forbidden bridgeAs={bridgeAs} signedIn={signedIn ?? (bridgeAs !== undefined ? bridgeAs !== "anon" : undefined)} />}
      >
        <Layout route={route} />
      </Boundary>
    </>
  );
}
