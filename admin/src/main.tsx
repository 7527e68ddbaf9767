import { ConvexAuthProvider } from "@convex-dev/auth/react";
import { ConvexProvider, ConvexReactClient } from "convex/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { asConvexClient, BridgeClient, httpTransport } from "./bridgeClient";
import { onCaughtError } from "./errors";
import { ConvexAuthGate } from "./SignIn";
import "./styles.css";

// `vite build --mode bridge` (scripts/lib/bridge.ts): the demo's embedded backend, identity from ?as=.
// Otherwise a Convex deployment (VITE_CONVEX_URL).
// VITE_AUTH=convex-auth: admins sign in with Convex Auth's Password provider (SignIn.tsx); on the
// bridge they are then who their token says, not ?as=. For another provider (Clerk, Auth0), wrap
// App in its Convex provider below (see docs/OPERATIONS.md, "Admin identities").
const convexAuth = import.meta.env.VITE_AUTH === "convex-auth";
const bridge = import.meta.env.MODE === "bridge";
const bridgeAs = bridge && !convexAuth ? (new URLSearchParams(window.location.search).get("as") ?? "admin") : undefined;
const url = import.meta.env.VITE_CONVEX_URL as string | undefined;
const client = bridge
  ? asConvexClient(new BridgeClient(httpTransport(window.location.origin, bridgeAs ?? "anon"), window.location.origin))
  : url
    ? new ConvexReactClient(url)
    : undefined;

createRoot(document.getElementById("root")!, { onCaughtError }).render(
  <StrictMode>
    {client && convexAuth ? (
      <ConvexAuthProvider client={client}>
        <ConvexAuthGate>
          <App signedIn />
        </ConvexAuthGate>
      </ConvexAuthProvider>
    ) : client ? (
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
