/**
 * Renders admin components on the backend under test (convex-test with the
 * loopback fakes), reached through the bridge client and executor in-process
 * (scripts/lib/bridge.ts localTransport, with the harness's modules), as the given caller. `closeAll`
 * unmounts and closes every client it opened. `adminSuite` is the frame every admin component suite
 * runs its tests in.
 */
import { act, cleanup, render, type RenderOptions } from "@testing-library/react";
import { ConvexProvider } from "convex/react";
import type { ReactElement } from "react";
import { afterEach, beforeEach, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { localTransport } from "../../scripts/lib/bridge";
import { ADMIN_IDENTITY, type Backend } from "../../scripts/lib/backend";
import { jobOf, modules, numberedCaseFile, settle, startStack, type Stack } from "../harness";
import { expectInvariants } from "../invariants";
import { asConvexClient, BridgeClient, type BridgeTransport } from "../../admin/src/bridgeClient";

export type Caller = "admin" | "guest" | "anon";

function bridgeRenderer(backend: () => Backend) {
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

/**
 * The frame of an admin component suite. Before each test: a fresh stack (`options` on top of the
 * admin listed in ADMIN_EMAILS), the URL's hash and the page title cleared, the console's log and
 * warn lines silenced. After it: every screen closed, the backend's scheduled work settled and
 * checked against the invariants, the stack closed, every mock restored. `stack()` is the running
 * test's stack.
 */
export function adminSuite(options: Parameters<typeof startStack>[0] = {}) {
  let current: Stack | undefined;
  const stack = () => {
    if (!current) throw new Error("adminSuite: no test is running");
    return current;
  };
  const ui = bridgeRenderer(() => stack().t);
  beforeEach(async () => {
    window.location.hash = "";
    document.title = "";
    current = await startStack({ ...options, env: { ADMIN_EMAILS: ADMIN_IDENTITY.email, ...options.env } });
    for (const level of ["log", "warn"] as const) vi.spyOn(console, level).mockImplementation(() => {});
  });
  afterEach(async () => {
    ui.closeAll();
    const running = current;
    current = undefined;
    if (!running) return; // its start failed, and said so
    try {
      await settle(running.t);
      await expectInvariants(running.t);
    } finally {
      await running.close();
      vi.restoreAllMocks();
    }
  });
  return { stack, ui };
}

/** Five case files and their jobs, in order: 0 and 1 fail 401 (`unauthorized`), 2 fails `bad_content_type`, 3 and 4 are stored. */
export async function fiveJobs(stack: Stack): Promise<Id<"portraitJobs">[]> {
  stack.recraft.setFault(({ prompt }) => {
    const i = Number(prompt.match(/#(\d+)/)?.[1] ?? 99);
    if (i < 2) return { kind: "status", status: 401, body: "invalid api key" };
    if (i === 2) return { kind: "imageContentType", contentType: "text/html" };
    return undefined;
  });
  const jobIds: Id<"portraitJobs">[] = [];
  for (let i = 0; i < 5; i++) {
    const storyId = await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(i));
    await settle(stack.t);
    jobIds.push((await jobOf(stack.t, storyId))._id);
  }
  stack.recraft.setFault(undefined);
  return jobIds;
}
