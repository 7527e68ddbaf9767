import { ConvexProvider, ConvexReactClient } from "convex/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { asConvexClient, BridgeClient, httpTransport } from "./bridgeClient";
import { onCaughtError } from "./errors";
import "./styles.css";

// `vite build --mode bridge` (scripts/lib/bridge.ts): the demo's embedded backend, identity from ?as=.
// Otherwise a Convex deployment; wrap App in your auth provider's Convex
// provider (e.g. ConvexProviderWithClerk, see the README) so admins are signed in.
const bridgeAs = import.meta.env.MODE === "bridge" ? (new URLSearchParams(window.location.search).get("as") ?? "admin") : undefined;
const url = import.meta.env.VITE_CONVEX_URL as string | undefined;
const client =
  bridgeAs !== undefined
    ? asConvexClient(new BridgeClient(httpTransport(window.location.origin, bridgeAs)))
    : url
      ? new ConvexReactClient(url)
      : undefined;

createRoot(document.getElementById("root")!, { onCaughtError }).render(
  <StrictMode>
    {client ? (
      <ConvexProvider client={client}>
        <App bridgeAs={bridgeAs} />
      </ConvexProvider>
    ) : (
      <main className="forbidden">
        <h1>Not configured</h1>
        <p>Set VITE_CONVEX_URL to your deployment's URL (see the README), or run the demo with --serve.</p>
      </main>
    )}
  </StrictMode>,
);
