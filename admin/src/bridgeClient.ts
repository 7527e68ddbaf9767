/**
 * DEVELOPMENT AND TEST HARNESS, not for production. A stand-in for
 * ConvexReactClient that runs the admin app against the demo's embedded
 * backend (convex-test) through scripts/lib/bridge.ts instead of a Convex
 * deployment. It implements what convex/react's hooks call (`watchQuery`,
 * `mutation`, `action`, `query`, `logger`), so the components are unchanged:
 * a watched query is re-run whenever the bridge reports a change, and its
 * listeners are told when its result differs. Like the real client it reports
 * its connection (`connectionState`, `subscribeToConnectionState`, read by
 * useConvexConnectionState), and reconnects with exponential backoff. With
 * Convex Auth (ConvexAuthProvider calls `setAuth`/`clearAuth` and reads
 * `address`) its calls carry the signed-in user's token, as the real client's do.
 */
import type { ConvexReactClient } from "convex/react";
import { getFunctionName, type FunctionReference } from "convex/server";
import { ConvexError, convexToJson, jsonToConvex, type JSONValue, type Value } from "convex/values";
import { backoffMs, type Backoff } from "../../convex/lib/backoff";

export type CallKind = "query" | "mutation" | "action";
/** One function call; `args` are in Convex's JSON encoding (convexToJson). */
export type Call = { kind: CallKind; name: string; args: JSONValue };
/** A call's result, or the error it threw (`data` is a ConvexError's payload). */
export type Outcome = { value: JSONValue } | { error: { message: string; data?: JSONValue } };

/** Whether the change stream is open; when it is not, when the next attempt is due. */
export type Link = { connected: true } | { connected: false; retryAt: number; failures: number };

/**
 * How the client reaches the backend. The identity is the transport's, or the
 * holder of `token` (a JWT) when one is given; a token the backend refuses
 * rejects with TokenRejectedError.
 */
export interface BridgeTransport {
  run(calls: Call[], token?: string): Promise<Outcome[]>;
  /**
   * Calls `onChange` whenever the backend may have changed (and once on every
   * (re)connection), and `onLink` when the connection opens or fails;
   * returns a function that stops it.
   */
  subscribe(onChange: () => void, onLink?: (link: Link) => void): () => void;
}

const RECONNECT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 30_000, jitter: false };

/**
 * Reconnect delays: 1 s, 2 s, 4 s … up to 30 s (the project's backoff), each
 * with up to 20% jitter added, never taken off: a console never retries sooner
 * than that, so a stopped backend is not hammered (the backoff's own jitter
 * takes up to half off).
 */
export function reconnectDelayMs(failures: number, random = Math.random): number {
  return Math.round(backoffMs(failures + 1, RECONNECT_BACKOFF) * (1 + random() / 5));
}

/** A fetch that never reached the backend (as opposed to an error the backend answered). */
export class UnreachableError extends Error {
  constructor(cause: unknown) {
    super("The backend cannot be reached.", { cause });
    this.name = "UnreachableError";
  }
}

/** The backend refused the token (expired, or not one it trusts): fetch a fresh one. */
class TokenRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenRejectedError";
  }
}

/** The transport of the served app: POST /bridge/run, and server-sent events from /bridge/changes. */
export function httpTransport(base: string, as: string): BridgeTransport {
  return {
    async run(calls, token) {
      const response = await fetch(`${base}/bridge/run`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-bridge-as": as, ...(token && { authorization: `Bearer ${token}` }) },
        body: JSON.stringify(calls),
      }).catch((error: unknown) => {
        throw new UnreachableError(error);
      });
      if (response.status === 401) throw new TokenRejectedError(await response.text());
      if (!response.ok) throw new Error(`bridge: HTTP ${response.status}: ${await response.text()}`);
      return (await response.json()) as Outcome[];
    },
    // Server-sent events read with fetch rather than EventSource, whose fixed
    // retry interval would hammer a stopped backend: this one backs off.
    subscribe(onChange, onLink = () => {}) {
      let stopped = false;
      let failures = 0;
      let controller: AbortController | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const connect = async () => {
        controller = new AbortController();
        try {
          const response = await fetch(`${base}/bridge/changes`, { signal: controller.signal, headers: { accept: "text/event-stream" } });
          if (!response.ok || !response.body) throw new Error(`bridge: HTTP ${response.status}`);
          failures = 0;
          onLink({ connected: true });
          onChange();
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            const messages = (buffer + value).split("\n\n");
            buffer = messages.pop()!;
            if (messages.some((m) => /^data:/m.test(m))) onChange();
          }
        } catch {
          // Refused, dropped or aborted: below.
        }
        if (stopped) return;
        const delay = reconnectDelayMs(failures++);
        onLink({ connected: false, retryAt: Date.now() + delay, failures });
        timer = setTimeout(connect, delay);
      };
      void connect();
      return () => {
        stopped = true;
        controller?.abort();
        clearTimeout(timer);
      };
    },
  };
}

type Result = { value: Value } | { error: Error };

interface Entry {
  name: string;
  args: Record<string, Value>;
  listeners: Set<() => void>;
  result?: Result;
  json?: string;
  sent: number;
  applied: number;
  /** A paginated page's end, fixed by its first result (see `argsFor`). */
  end?: { cursor: string; isDone: boolean };
}

function toError(error: { message: string; data?: JSONValue }): Error {
  return error.data !== undefined ? new ConvexError(jsonToConvex(error.data)) : new Error(error.message);
}

function unwrap(outcome: Outcome): Value {
  if ("error" in outcome) throw toError(outcome.error);
  return jsonToConvex(outcome.value);
}

type Args = Record<string, Value>;

/** What convex/react's useConvexConnectionState reads, plus when the bridge retries next. */
export type BridgeConnectionState = ReturnType<ConvexReactClient["connectionState"]> & { nextRetryAt: number | null };

/** What ConvexProviderWithAuth hands the client: the auth provider's token source, and who to tell whether the backend took it. */
type AuthTokenFetcher = (args: { forceRefreshToken: boolean }) => Promise<string | null | undefined>;
interface Auth {
  fetchToken: AuthTokenFetcher;
  onChange: (isAuthenticated: boolean) => void;
  token?: string;
  /** A token fetch and check in progress. */
  pending?: Promise<void>;
}

export class BridgeClient {
  readonly logger = {
    log: (...args: unknown[]) => console.log(...args),
    warn: (...args: unknown[]) => console.warn(...args),
    error: (...args: unknown[]) => console.error(...args),
    logVerbose: () => {},
  };
  private readonly entries = new Map<string, Entry>();
  private stopWatching?: () => void;
  private refreshing?: Promise<void>;
  private refreshAgain = false;
  private closed = false;
  private link: BridgeConnectionState = {
    hasInflightRequests: false,
    isWebSocketConnected: false,
    timeOfOldestInflightRequest: null,
    hasEverConnected: false,
    connectionCount: 0,
    connectionRetries: 0,
    inflightMutations: 0,
    inflightActions: 0,
    nextRetryAt: null,
  };
  private readonly linkListeners = new Set<() => void>();
  private auth?: Auth;

  /** `address`: the backend's URL, as ConvexAuthProvider reads it (its storage namespace, and its HTTP client's base). */
  constructor(
    private readonly transport: BridgeTransport,
    readonly address = "http://bridge.invalid",
  ) {}

  /** As ConvexReactClient.setAuth: later calls carry the token once the backend has accepted it. */
  setAuth(fetchToken: AuthTokenFetcher, onChange: (isAuthenticated: boolean) => void) {
    const auth: Auth = { fetchToken, onChange };
    this.auth = auth;
    void this.authenticate(auth, false);
  }

  clearAuth() {
    this.auth = undefined;
    void this.refresh();
  }

  /**
   * Fetches a token and has the backend check it (an empty batch of calls);
   * a refused token is fetched once more with `forceRefreshToken`, like the
   * real client does. Then the watched queries run again as its holder.
   */
  private authenticate(auth: Auth, forceRefreshToken: boolean, failures = 0): Promise<void> {
    auth.pending ??= (async () => {
      const token = (await auth.fetchToken({ forceRefreshToken }).catch(() => null)) ?? undefined;
      if (auth !== this.auth) return;
      if (token === undefined) {
        auth.token = undefined;
        return auth.onChange(false);
      }
      try {
        await this.transport.run([], token);
      } catch (error) {
        if (auth !== this.auth) return;
        auth.pending = undefined;
        if (!(error instanceof TokenRejectedError)) {
          setTimeout(() => void this.authenticate(auth, forceRefreshToken, failures + 1), reconnectDelayMs(failures));
        } else if (!forceRefreshToken) {
          await this.authenticate(auth, true);
        } else {
          auth.token = undefined;
          auth.onChange(false);
        }
        return;
      }
      if (auth !== this.auth) return;
      auth.token = token;
      auth.onChange(true);
      await this.refresh();
    })().finally(() => (auth.pending = undefined));
    return auth.pending;
  }

  /** Runs calls with the current token; a refused token is refreshed and the calls sent once more. */
  private async run(calls: Call[]): Promise<Outcome[]> {
    const auth = this.auth;
    try {
      return await this.transport.run(calls, auth?.token);
    } catch (error) {
      if (!(error instanceof TokenRejectedError) || !auth || auth !== this.auth) throw error;
      await this.authenticate(auth, true);
      return this.transport.run(calls, this.auth?.token);
    }
  }

  watchQuery(query: FunctionReference<"query">, args: Args = {}) {
    const name = getFunctionName(query);
    const key = `${name}:${JSON.stringify(convexToJson(args))}`;
    return {
      onUpdate: (callback: () => void) => {
        let entry = this.entries.get(key);
        if (!entry) {
          entry = { name, args, listeners: new Set(), sent: 0, applied: 0 };
          this.entries.set(key, entry);
          void this.fetch([entry]);
        }
        entry.listeners.add(callback);
        this.stopWatching ??= this.transport.subscribe(
          () => void this.refresh(),
          (link) => this.setLink(link),
        );
        const watched = entry;
        return () => {
          watched.listeners.delete(callback);
          if (watched.listeners.size === 0 && this.entries.get(key) === watched) this.entries.delete(key);
          if (this.entries.size === 0) {
            this.stopWatching?.();
            this.stopWatching = undefined;
          }
        };
      },
      localQueryResult: (): Value | undefined => {
        const result = this.entries.get(key)?.result;
        if (result && "error" in result) throw result.error;
        return result?.value;
      },
      journal: () => undefined,
    };
  }

  /**
   * Reconnects at once rather than at the next backed-off attempt (the
   * console's "Reconnect now"): a fresh subscription connects immediately.
   */
  reconnectNow() {
    if (this.closed || !this.stopWatching) return;
    this.stopWatching();
    this.stopWatching = this.transport.subscribe(
      () => void this.refresh(),
      (link) => this.setLink(link),
    );
  }

  connectionState(): BridgeConnectionState {
    return this.link;
  }

  subscribeToConnectionState(callback: () => void): () => void {
    this.linkListeners.add(callback);
    return () => this.linkListeners.delete(callback);
  }

  private setLink(link: Link) {
    const was = this.link;
    this.link = link.connected
      ? {
          ...was,
          isWebSocketConnected: true,
          hasEverConnected: true,
          connectionCount: was.connectionCount + 1,
          connectionRetries: 0,
          nextRetryAt: null,
        }
      : { ...was, isWebSocketConnected: false, connectionRetries: link.failures, nextRetryAt: link.retryAt };
    for (const listener of this.linkListeners) listener();
  }

  /** Runs a mutation; like Convex, resolves once the watched queries reflect it. */
  async mutation(mutation: FunctionReference<"mutation">, args: Args = {}): Promise<Value> {
    return this.write("mutation", getFunctionName(mutation), args);
  }

  async action(action: FunctionReference<"action">, args: Args = {}): Promise<Value> {
    return this.write("action", getFunctionName(action), args);
  }

  async query(query: FunctionReference<"query">, args: Args = {}): Promise<Value> {
    const [outcome] = await this.run([{ kind: "query", name: getFunctionName(query), args: convexToJson(args) }]);
    return unwrap(outcome!);
  }

  /** Re-runs every watched query (the transport calls this on each change). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.fetch([...this.entries.values()]);
      } while (this.refreshAgain && !this.closed);
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  close() {
    this.closed = true;
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.entries.clear();
  }

  private async write(kind: CallKind, name: string, args: Args): Promise<Value> {
    const [outcome] = await this.run([{ kind, name, args: convexToJson(args) }]);
    await this.refresh();
    return unwrap(outcome!);
  }

  /**
   * Convex keeps a loaded page's range fixed: after the first result, a page
   * re-runs up to the cursor it first ended at, so new rows grow the page
   * instead of shifting rows into the next one. The bridge does the same by
   * passing that cursor as `endCursor`.
   */
  private argsFor(entry: Entry): Args {
    const opts = entry.args.paginationOpts as Record<string, Value> | undefined;
    if (!opts || !entry.end || opts.endCursor) return entry.args;
    return { ...entry.args, paginationOpts: { ...opts, endCursor: entry.end.cursor } };
  }

  private async fetch(entries: Entry[]) {
    if (entries.length === 0 || this.closed) return;
    const sent = entries.map((entry) => ++entry.sent);
    let outcomes: Outcome[];
    try {
      outcomes = await this.run(entries.map((entry) => ({ kind: "query", name: entry.name, args: convexToJson(this.argsFor(entry)) })));
    } catch {
      // Keep the last results: the connection indicator says they are stale,
      // and the next (re)connection fetches them again.
      return;
    }
    entries.forEach((entry, i) => this.apply(entry, sent[i]!, outcomes[i]!));
  }

  private apply(entry: Entry, sent: number, outcome: Outcome) {
    if (sent < entry.applied) return; // an older answer arriving late
    entry.applied = sent;
    const json = JSON.stringify(outcome);
    if (json === entry.json) return;
    entry.json = json;
    if ("error" in outcome) {
      entry.result = { error: toError(outcome.error) };
    } else {
      let value = jsonToConvex(outcome.value);
      if (entry.args.paginationOpts && !(entry.args.paginationOpts as Record<string, Value>).endCursor) {
        const page = value as { continueCursor: string; isDone: boolean };
        if (!entry.end) entry.end = { cursor: page.continueCursor, isDone: page.isDone };
        else value = { ...page, continueCursor: entry.end.cursor, isDone: entry.end.isDone };
      }
      entry.result = { value };
    }
    for (const listener of entry.listeners) listener();
  }
}

/** ConvexProvider's prop type is the real client; the bridge client has the part the hooks use. */
export function asConvexClient(client: BridgeClient): ConvexReactClient {
  return client as unknown as ConvexReactClient;
}
