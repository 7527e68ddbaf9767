/**
 * Renders admin components on the backend under test (convex-test with the
 * loopback fakes), reached through the bridge client and executor in-process
 * (scripts/lib/bridge.ts localTransport, with the harness's modules), as the given caller. `closeAll`
 * unmounts and closes every client it opened.
 */
import { cleanup, render, type RenderOptions } from "@testing-library/react";
import { ConvexProvider } from "convex/react";
import type { ReactElement } from "react";
import { localTransport } from "../../scripts/lib/bridge";
import type { Backend } from "../../scripts/lib/backend";
import { modules } from "../../tests/harness";
import { asConvexClient, BridgeClient } from "../src/bridgeClient";

export type Caller = "admin" | "guest" | "anon";

export function bridgeRenderer(backend: () => Backend) {
  const clients: BridgeClient[] = [];
  return {
    render(as: Caller, ui: ReactElement, options?: RenderOptions) {
      const client = new BridgeClient(localTransport(backend(), as, { pollMs: 25, modules }));
      clients.push(client);
      return render(<ConvexProvider client={asConvexClient(client)}>{ui}</ConvexProvider>, options);
    },
    closeAll() {
      cleanup();
      for (const client of clients.splice(0)) client.close();
    },
  };
}
