/**
 * Renders admin components on the backend under test (convex-test with the
 * loopback fakes), reached through the bridge client and executor in-process
 * (scripts/lib/bridge.ts localTransport, with the harness's modules), as the given caller. `closeAll`
 * unmounts and closes every client it opened.
 */
import { act, cleanup, render, type RenderOptions } from "@testing-library/react";
import { ConvexProvider } from "convex/react";
import type { ReactElement } from "react";
import { localTransport } from "../../scripts/lib/bridge";
import type { Backend } from "../../scripts/lib/backend";
import { modules } from "../harness";
import { asConvexClient, BridgeClient, type BridgeTransport } from "../../admin/src/bridgeClient";

export type Caller = "admin" | "guest" | "anon";

export function bridgeRenderer(backend: () => Backend) {
  const clients: BridgeClient[] = [];
  const inFlight = new Set<Promise<unknown>>();
  /** The transport, with every call it runs kept in `inFlight` until it is answered. */
  const tracked = (transport: BridgeTransport): BridgeTransport => ({
    ...transport,
    run(calls, token) {
      const answer = transport.run(calls, token);
      const answered: Promise<unknown> = answer.then(
        () => inFlight.delete(answered),
        () => inFlight.delete(answered),
      );
      inFlight.add(answered);
      return answer;
    },
  });
  return {
    render(as: Caller, ui: ReactElement, options?: RenderOptions, transport = localTransport(backend(), as, { pollMs: 25, modules })) {
      const client = new BridgeClient(tracked(transport));
      clients.push(client);
      return render(<ConvexProvider client={asConvexClient(client)}>{ui}</ConvexProvider>, options);
    },
    /**
     * Brings the screen up to the backend's current state, whatever the
     * machine's speed: the clients re-run their watched queries (as on a change
     * notification), every call in flight (a clicked button's mutation too) is
     * answered, and React renders what came back, until no call is left in flight.
     * Settle the backend's scheduled work first (tests/harness.ts `settle`) when
     * the screen should show its outcome.
     */
    async synced() {
      do {
        await act(async () => {
          await Promise.all(clients.map((client) => client.refresh()));
          while (inFlight.size > 0) await Promise.all(inFlight);
          // The callers' own continuations (a component's `await mutation(…)`) run before React renders.
          await new Promise((resolve) => setTimeout(resolve, 0));
        });
      } while (inFlight.size > 0);
    },
    closeAll() {
      cleanup();
      for (const client of clients.splice(0)) client.close();
    },
  };
}
