import { useConvex, useConvexConnectionState } from "convex/react";
import { useEffect, useRef, useState } from "react";
import type { BridgeConnectionState } from "./bridgeClient";
import { formatDateTime, useNow } from "./format";

export type LinkStatus =
  { kind: "live" } | { kind: "connecting" } | { kind: "offline"; since: number; lastLive: number | null; retryAt: number | null };

/**
 * The connection as an operator needs it: live, still connecting, or offline
 * since when (and what the data on screen dates from). Works with the real
 * ConvexReactClient and with the bridge client, which also says when it retries.
 */
export function useLinkStatus(): LinkStatus {
  const state = useConvexConnectionState() as ReturnType<typeof useConvexConnectionState> & Partial<BridgeConnectionState>;
  const connected = state.isWebSocketConnected;
  const lastLive = useRef<number | null>(null);
  const [since, setSince] = useState<number | null>(null);
  useEffect(() => {
    if (connected) {
      setSince(null);
      lastLive.current = Date.now();
      return;
    }
    if (state.hasEverConnected || state.connectionRetries > 0) setSince((s) => s ?? Date.now());
  }, [connected, state.hasEverConnected, state.connectionRetries]);
  if (connected) {
    lastLive.current = Date.now();
    return { kind: "live" };
  }
  if (since === null) return { kind: "connecting" };
  return { kind: "offline", since, lastLive: lastLive.current, retryAt: state.nextRetryAt ?? null };
}

/** The header's indicator: a dot and a word, and when offline, when the next attempt is. */
export function ConnectionIndicator({ status }: { status: LinkStatus }) {
  const now = useNow(1000);
  const label =
    status.kind === "live"
      ? "Live"
      : status.kind === "connecting"
        ? "Connecting…"
        : `Offline · ${status.retryAt !== null && status.retryAt > now ? `retrying in ${Math.ceil((status.retryAt - now) / 1000)} s` : "reconnecting…"}`;
  return (
    <span className={`link link-${status.kind}`} role="status" data-testid="connection" data-state={status.kind}>
      <span className="link-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

/** Said once, loudly, while offline: the data on screen is not live. Offers to reconnect now when the client can. */
export function OfflineBanner({ status }: { status: LinkStatus }) {
  const client = useConvex() as unknown as { reconnectNow?: () => void };
  if (status.kind !== "offline") return null;
  return (
    <div className="offline-banner" role="alert" data-testid="offline-banner">
      <strong>The backend cannot be reached</strong> (since {formatDateTime(status.since)}).{" "}
      {status.lastLive !== null
        ? `What you see is from ${formatDateTime(status.lastLive)} and may be out of date. `
        : "Nothing has loaded yet. "}
      The console reconnects by itself.{" "}
      {typeof client.reconnectNow === "function" && (
        <button type="button" onClick={() => client.reconnectNow!()}>
          Reconnect now
        </button>
      )}
    </div>
  );
}

/** "Loading …" while the backend is reachable; while it is not, says that the view waits for it. */
export function Loading({ what }: { what: string }) {
  const state = useConvexConnectionState();
  const offline = !state.isWebSocketConnected && (state.hasEverConnected || state.connectionRetries > 0);
  return (
    <p className="muted" role="status" data-testid="loading">
      {offline ? `Waiting for the backend (${what} not loaded yet): it cannot be reached right now.` : `Loading ${what}…`}
    </p>
  );
}
