import { useMutation, useQuery } from "convex/react";
import { ConvexError } from "convex/values";
import { Component, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import type { ErrorCode, JobStatus } from "../../convex/validators";
import { Audit } from "./Audit";
import { Backfill } from "./Backfill";
import { ERROR_CODES, STATUSES } from "./format";
import { JobPage } from "./JobPage";
import { JobTable } from "./JobTable";
import { FollowRun, StoryRuns } from "./StoryRuns";

export type Route = { page: "jobs"; status?: JobStatus; code?: ErrorCode } | { page: "job"; id: string } | { page: "audit" } | { page: "stories" };

export function parseRoute(hash: string): Route {
  const [path, query = ""] = hash.replace(/^#/, "").split("?");
  const job = path.match(/^\/jobs\/([^/]+)$/);
  if (job) return { page: "job", id: decodeURIComponent(job[1]) };
  if (path === "/audit") return { page: "audit" };
  if (path === "/stories") return { page: "stories" };
  const params = new URLSearchParams(query);
  const status = STATUSES.find((s) => s === params.get("status"));
  const code = ERROR_CODES.find((c) => c === params.get("code"));
  return { page: "jobs", status, code };
}

function useRoute(): [Route, string] {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    const onChange = () => setHash(window.location.hash);
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return [parseRoute(hash), hash];
}

export function isForbidden(error: unknown): boolean {
  return error instanceof ConvexError && error.data === "forbidden";
}

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
        <p className="mono">{error.message}</p>
        <button type="button" onClick={() => this.setState({ error: undefined })}>
          Try again
        </button>
      </section>
    );
  }
}

export function Forbidden({ bridgeAs }: { bridgeAs?: string }) {
  return (
    <main className="forbidden" aria-labelledby="forbidden-title">
      <h1 id="forbidden-title">Restricted ward</h1>
      <p>This console is for staff only, and your account is not on the list.</p>
      <p className="muted">If you should have access, ask an administrator to add your email to ADMIN_EMAILS.</p>
      {bridgeAs !== undefined && (
        <p className="muted">
          Local bridge: you are acting as “{bridgeAs}”. <a href="?as=admin">Continue as the demo admin</a>
        </p>
      )}
    </main>
  );
}

export function Counts() {
  const counts = useQuery(api.admin.statusCounts);
  return (
    <section className="counts" aria-label="Jobs by status" aria-busy={counts === undefined}>
      {STATUSES.map((status) => (
        <a key={status} className={`count status-${status}`} href={`#/?status=${status}`} data-testid={`count-${status}`}>
          <span className="count-n">{counts ? counts[status] : "…"}</span>
          <span className="count-label">{status}</span>
        </a>
      ))}
    </section>
  );
}

export function GenerateStory() {
  const generate = useMutation(api.admin.generateStory);
  const [hint, setHint] = useState("");
  const [state, setState] = useState<{ kind: "idle" | "busy" } | { kind: "started"; runId: Id<"storyRuns"> } | { kind: "error"; message: string }>({ kind: "idle" });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setState({ kind: "busy" });
    try {
      setState({ kind: "started", runId: await generate({ hint: hint.trim() || undefined }) });
      setHint("");
    } catch (error) {
      setState({ kind: "error", message: (error as Error).message });
    }
  };
  return (
    <form className="generate" onSubmit={submit}>
      <label htmlFor="hint">Theme</label>
      <input id="hint" value={hint} onChange={(e) => setHint(e.target.value)} placeholder="optional, e.g. a drowned lighthouse" maxLength={200} />
      <button type="submit" className="primary" disabled={state.kind === "busy"}>
        Generate story
      </button>
      <span role="status" className={state.kind === "error" ? "error-text" : "muted"}>
        {state.kind === "busy" ? "Starting a story run…" : state.kind === "started" ? <FollowRun runId={state.runId} /> : state.kind === "error" ? state.message : ""}
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

function Layout({ route, hash }: { route: Route; hash: string }) {
  const current = route.page === "audit" || route.page === "stories" ? route.page : "jobs";
  return (
    <>
      <header className="top">
        <div className="brand">
          <h1>
            <a href="#/">Case File Portraits</a>
          </h1>
          <span className="muted">admin</span>
        </div>
        <nav aria-label="Sections">
          <a href="#/" aria-current={current === "jobs" ? "page" : undefined}>
            Jobs
          </a>
          <a href="#/stories" aria-current={current === "stories" ? "page" : undefined}>
            Story runs
          </a>
          <a href="#/audit" aria-current={current === "audit" ? "page" : undefined}>
            Failures &amp; latency
          </a>
        </nav>
      </header>
      <Counts />
      <main>
        <Boundary key={hash}>
          {route.page === "job" ? (
            <JobPage jobId={route.id} />
          ) : route.page === "audit" ? (
            <Audit />
          ) : route.page === "stories" ? (
            <>
              <GenerateStory />
              <StoryRuns />
            </>
          ) : (
            <>
              <GenerateStory />
              <Backfill />
              <JobTable initialStatus={route.status} initialCode={route.code} />
            </>
          )}
        </Boundary>
      </main>
    </>
  );
}

export function App({ bridgeAs }: { bridgeAs?: string }) {
  const [route, hash] = useRoute();
  return (
    <>
      {bridgeAs !== undefined && <BridgeBanner as={bridgeAs} />}
      <Boundary forbidden={<Forbidden bridgeAs={bridgeAs} />}>
        <Layout route={route} hash={hash} />
      </Boundary>
    </>
  );
}
