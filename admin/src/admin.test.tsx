/**
 * The admin app's views on data from the real backend functions: the
 * project's Convex functions on convex-test with the loopback fakes (as in
 * tests/), reached through the bridge client and executor in-process
 * (scripts/lib/bridge.ts localTransport), so no fixture is hand-written.
 */
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { ConvexProvider } from "convex/react";
import type { ReactElement } from "react";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { localTransport } from "../../scripts/lib/bridge";
import { jobOf, numberedCaseFile, settle, startStack, type Stack } from "../../tests/harness";
import { expectInvariants } from "../../tests/invariants";
import { App, Counts } from "./App";
import { Audit } from "./Audit";
import { asConvexClient, BridgeClient } from "./bridgeClient";
import { JobPage } from "./JobPage";
import { JobTable } from "./JobTable";

let stack: Stack;
let clients: BridgeClient[];
let jobIds: Id<"portraitJobs">[];

const story = numberedCaseFile;

/**
 * Five case files: 0 and 1 fail `unauthorized`, 2 fails `bad_content_type`,
 * 3 and 4 are stored; then 0 is retried and stored on its second attempt.
 */
beforeEach(async () => {
  stack = await startStack({ env: { ADMIN_EMAILS: ADMIN_IDENTITY.email } });
  clients = [];
  stack.recraft.setFault(({ prompt }) => {
    const i = Number(prompt.match(/#(\d+)/)![1]);
    if (i < 2) return { kind: "status", status: 401, body: "invalid api key" };
    if (i === 2) return { kind: "imageContentType", contentType: "text/html" };
    return undefined;
  });
  jobIds = [];
  for (let i = 0; i < 5; i++) {
    const storyId = await stack.t.mutation(internal.stories.insertStory, story(i));
    await settle(stack.t);
    jobIds.push((await jobOf(stack.t, storyId))._id);
  }
  stack.recraft.setFault(undefined);
  await stack.t.mutation(internal.portraits.retryJob, { jobId: jobIds[0] });
  await settle(stack.t);
});

afterEach(async () => {
  cleanup();
  for (const client of clients) client.close();
  try {
    await settle(stack.t);
    await expectInvariants(stack.t);
  } finally {
    await stack.close();
  }
});

function renderAs(as: "admin" | "guest" | "anon", ui: ReactElement) {
  const client = new BridgeClient(localTransport(stack.t, as, { pollMs: 25 }));
  clients.push(client);
  return render(<ConvexProvider client={asConvexClient(client)}>{ui}</ConvexProvider>);
}

const countOf = (status: string) => screen.getByTestId(`count-${status}`).querySelector(".count-n")!.textContent;
const bodyRows = () => [...document.querySelectorAll("tbody tr")] as HTMLElement[];

describe("admin views on the real backend", () => {
  test("status counts are exact and tick live", async () => {
    renderAs("admin", <Counts />);
    await waitFor(() => expect(countOf("stored")).toBe("3"));
    expect(["pending", "requested", "downloaded", "stored", "failed"].map(countOf)).toEqual(["0", "0", "0", "3", "2"]);

    await stack.t.mutation(internal.stories.insertStory, story(5));
    await waitFor(() => expect(countOf("stored")).toBe("4"), { timeout: 5000 });
    expect(countOf("failed")).toBe("2");
  });

  test("the job table pages, filters by status and code, and searches by title, patient and job id", async () => {
    renderAs("admin", <JobTable pageSize={2} searchDelayMs={0} />);
    await waitFor(() => expect(bodyRows()).toHaveLength(2));
    // Newest first.
    expect(bodyRows()[0].textContent).toContain("The Ward of Whisper4");
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(bodyRows()).toHaveLength(4));
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(bodyRows()).toHaveLength(5));
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
    const first = bodyRows()[4];
    expect(first.textContent).toContain("The Ward of Whisper0");
    expect(first.textContent).toContain("Edith Marrow0");
    expect(within(first).getAllByRole("cell")[3].textContent).toBe("2"); // attempt

    // New jobs join the loaded pages live, at the top, without duplicating or dropping a row.
    await stack.t.mutation(internal.stories.insertStory, story(5));
    await stack.t.mutation(internal.stories.insertStory, story(6));
    await waitFor(() => expect(bodyRows()).toHaveLength(7));
    const ids = bodyRows().map((r) => r.dataset.jobId);
    expect(new Set(ids).size).toBe(7);
    expect(ids.slice(2)).toEqual([...jobIds].reverse());
    expect(bodyRows()[0].textContent).toContain("The Ward of Whisper6");
    await settle(stack.t);

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "failed" } });
    await waitFor(() => expect(bodyRows().map((r) => r.dataset.jobId).sort()).toEqual([jobIds[1], jobIds[2]].sort()));
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "unauthorized" } });
    await waitFor(() => expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[1]]));
    expect(bodyRows()[0].textContent).toContain("unauthorized");
    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "stored" } });
    await screen.findByText("No jobs match these filters.");

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "" } });
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "" } });
    const search = screen.getByLabelText("Search");
    fireEvent.change(search, { target: { value: "Whisper3" } });
    await waitFor(() => expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[3]]));
    fireEvent.change(search, { target: { value: "marrow2" } });
    await waitFor(() => expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[2]]));
    fireEvent.change(search, { target: { value: jobIds[4] } });
    await waitFor(() => expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[4]]));
    fireEvent.change(search, { target: { value: "nobody" } });
    await screen.findByText("No jobs match these filters.");
  });

  test("a job page shows the portrait, the story and every transition across attempts", async () => {
    renderAs("admin", <JobPage jobId={jobIds[0]} />);
    await screen.findByRole("heading", { name: "The Ward of Whisper0" });
    const portrait = screen.getByRole("img", { name: "Portrait of Edith Marrow0" }) as HTMLImageElement;
    expect(portrait.getAttribute("src")).toMatch(/^\/storage\//);
    expect(screen.getByText(/Ward C was sealed/)).toBeTruthy();
    expect(document.querySelectorAll(".chapters li")).toHaveLength(8);

    const timeline = screen.getByRole("table");
    const rows = within(timeline).getAllByRole("row").slice(1);
    const transitions = rows.map((row) => within(row).getAllByRole("cell").slice(1, 3).map((c) => c.textContent).join(" "));
    expect(transitions).toEqual([
      "1 new → pending",
      "1 pending → requested",
      "1 requested → failed",
      "2 failed → pending",
      "2 pending → requested",
      "2 requested → downloaded",
      "2 downloaded → stored",
    ]);
    expect(rows[2].textContent).toContain("unauthorized");
    expect(within(rows[2]).getAllByRole("cell")[4].textContent).toBe("401");
    const downloaded = (await stack.t.run((ctx) => ctx.db.query("portraitJobEvents").collect())).find((e) => e.jobId === jobIds[0] && e.to === "downloaded")!;
    expect(rows[5].textContent).toContain(downloaded.details!.recraftRequestId!);
    expect(rows[6].textContent).toContain("image/png");
  });

  test("the audit view groups failures by code, retries a code, and shows step latencies", async () => {
    renderAs("admin", <Audit />);
    const unauthorized = (await screen.findByText("unauthorized", { selector: ".code" })).closest("tr")!;
    const cells = () => within(unauthorized).getAllByRole("cell").map((c) => c.textContent);
    expect(cells().slice(0, 3)).toEqual(["2", "2", "1"]); // failures, jobs, still failed
    expect(cells()[3]).toContain("401");
    const other = document.querySelector<HTMLElement>('tr[data-code="bad_content_type"]')!;
    expect(within(other).getAllByRole("cell")[2].textContent).toBe("1");

    const latency = document.querySelectorAll<HTMLElement>("tr[data-step]");
    expect([...latency].map((r) => r.dataset.step)).toEqual(["queue", "request", "download", "store", "total"]);
    for (const row of latency) expect(within(row).getAllByRole("cell")[0].textContent).toMatch(/^\d+(\.\d)? (ms|s)$/);

    fireEvent.click(screen.getByRole("button", { name: "Retry all unauthorized jobs" }));
    await screen.findByText("Queued 1 job.");
    await settle(stack.t);
    await waitFor(() => expect(screen.getByTestId("still-failed-unauthorized").textContent).toBe("0"), { timeout: 5000 });
    expect(await stack.t.run((ctx) => ctx.db.get(jobIds[1]))).toMatchObject({ status: "stored", attempt: 2 });
  });

  test("a non-admin sees the forbidden page and no data", async () => {
    for (const as of ["guest", "anon"] as const) {
      const { unmount } = renderAs(as, <App bridgeAs={as} />);
      await screen.findByRole("heading", { name: "Restricted ward" });
      expect(document.body.textContent).not.toMatch(/Whisper|Marrow|stored|failed/);
      expect(screen.queryByRole("table")).toBeNull();
      unmount();
    }
    renderAs("admin", <App bridgeAs="admin" />);
    await waitFor(() => expect(bodyRows()).toHaveLength(5));
    expect(screen.queryByRole("heading", { name: "Restricted ward" })).toBeNull();
  });
});
