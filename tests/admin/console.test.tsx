/**
 * Console v3 (issue 16): each bug has a test here that failed before its fix,
 * and each feature is used as an operator would, on the real backend functions
 * (convex-test with the loopback fakes, through the bridge client in-process).
 */
import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import type { ReactElement } from "react";
import { beforeEach, describe, expect, test } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import crons from "../../convex/crons";
import type { Id } from "../../convex/_generated/dataModel";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { localTransport } from "../../scripts/lib/bridge";
import { DEMO_FAULTS } from "../../scripts/lib/faults";
import { caseFile, jobOf, modules, numberedCaseFile, settle } from "../harness";
import { adminSuite, fiveJobs } from "./render";
import { App, GenerateStory } from "../../admin/src/App";
import { Audit } from "../../admin/src/Audit";
import { UnreachableError, type BridgeTransport, type Link } from "../../admin/src/bridgeClient";
import { JobPage } from "../../admin/src/JobPage";
import { JobTable } from "../../admin/src/JobTable";
import { QueueControl } from "../../admin/src/QueueControl";
import { QueueMetrics } from "../../admin/src/QueueMetrics";
import { useRoute } from "../../admin/src/route";
import { StoryRunPage } from "../../admin/src/StoryRunPage";
import { StoryRuns } from "../../admin/src/StoryRuns";

const { stack, ui } = adminSuite();
let jobIds: Id<"portraitJobs">[];

const admin = () => stack().t.withIdentity(ADMIN_IDENTITY);

/** The five case files of `fiveJobs`. */
beforeEach(async () => {
  jobIds = await fiveJobs(stack());
});

const renderAsAdmin = (element: ReactElement, transport?: BridgeTransport) => ui.render("admin", element, undefined, transport);

function RoutedTable() {
  const route = useRoute();
  return route.page === "jobs" ? <JobTable route={route} searchDelayMs={0} /> : <p>elsewhere</p>;
}

const go = (hash: string) => act(() => void (window.location.hash = hash));
const rowIds = () => [...document.querySelectorAll<HTMLElement>("tbody tr")].map((r) => r.dataset.jobId);
const jobsNow = () => stack().t.run(async (ctx) => Promise.all(jobIds.map((id) => ctx.db.get(id))));

/** Moves a failed job's failure (its row and its events) `ms` into the past. */
async function ageFailure(jobId: Id<"portraitJobs">, ms: number) {
  await stack().t.run(async (ctx) => {
    const job = (await ctx.db.get(jobId))!;
    await ctx.db.patch(jobId, { updatedAt: job.updatedAt - ms, createdAt: job.createdAt - ms });
    for (const event of await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_job", (q) => q.eq("jobId", jobId))
      .collect()) {
      await ctx.db.patch(event._id, { at: event.at - ms });
    }
  });
}

describe("bug 2: a bulk retry says what it does, for any age, and reports its exact total", () => {
  test("the audit's confirmation counts every job failed with the code now, older than a day included; the result is the total", async () => {
    await ageFailure(jobIds[0]!, 3 * 24 * 60 * 60 * 1000);
    renderAsAdmin(<Audit />);
    await ui.synced();
    fireEvent.click(screen.getByRole("button", { name: "Retry all unauthorized jobs" }));
    await ui.synced();
    const dialog = screen.getByRole("alertdialog");
    // Job 1 failed today, job 0 three days ago: both are failed now, both are re-queued.
    expect(dialog.textContent).toContain("all 2 jobs failed with unauthorized now");
    expect(dialog.textContent).not.toContain("in the last 24 hours");
    fireEvent.click(within(dialog).getByRole("button", { name: "Retry 2 jobs" }));
    await ui.synced();
    await settle(stack().t);
    await ui.synced();
    expect(screen.getByText("Queued 2 jobs.")).toBeTruthy();
    expect((await jobsNow()).slice(0, 2).map((j) => j!.status)).toEqual(["stored", "stored"]);
  });

  test("a code whose failures are all older than a day is retried from the job list, filter and all", async () => {
    await ageFailure(jobIds[0]!, 3 * 24 * 60 * 60 * 1000);
    await ageFailure(jobIds[1]!, 3 * 24 * 60 * 60 * 1000);
    await go("#/?status=failed&code=unauthorized");
    renderAsAdmin(<RoutedTable />);
    await waitFor(() => expect(rowIds()).toHaveLength(2));
    fireEvent.click(screen.getByRole("button", { name: "Retry all matching" }));
    const dialog = await screen.findByRole("alertdialog");
    await waitFor(() => expect(within(dialog).getByRole("button", { name: "Retry 2 jobs" })).toBeTruthy());
    fireEvent.click(within(dialog).getByRole("button", { name: "Retry 2 jobs" }));
    await screen.findByText("Queued 2 jobs.", undefined, { timeout: 5000 });
    await settle(stack().t);
    expect((await jobsNow()).map((j) => j!.status)).toEqual(["stored", "stored", "failed", "stored", "stored"]);
  });
});

describe("bug 3: focus stays on the page", () => {
  test("after Retry job (its button goes), focus is on the note that says what happened", async () => {
    renderAsAdmin(<JobPage jobId={jobIds[1]!} />);
    const button = await screen.findByRole("button", { name: "Retry job" });
    button.focus();
    fireEvent.click(button);
    await waitFor(() => expect(screen.queryByRole("button", { name: "Retry job" })).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("retry-note")));
    expect(document.activeElement!.textContent).toBe("Queued as a new attempt.");
  });

  test("Escape on the bulk-retry confirmation puts focus back on the button that opened it", async () => {
    renderAsAdmin(<Audit />);
    const open = await screen.findByRole("button", { name: "Retry all unauthorized jobs" }, { timeout: 5000 });
    open.focus();
    fireEvent.click(open);
    const dialog = await screen.findByRole("alertdialog");
    fireEvent.keyDown(within(dialog).getAllByRole("button")[0]!, { key: "Escape" });
    await waitFor(() => expect(screen.queryByRole("alertdialog")).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("button", { name: "Retry all unauthorized jobs" })));
  });
});

describe("bug 4: a run's theme", () => {
  test("stays in the story runs list once its story is written", async () => {
    await admin().mutation(api.admin.generateStory, { hint: "a drowned lighthouse" });
    await settle(stack().t);
    renderAsAdmin(<StoryRuns route={{ page: "stories" }} />);
    const row = (await screen.findByText("inserted", { selector: ".badge" })).closest("tr")!;
    expect(row.textContent).toContain("a drowned lighthouse");
  });

  test("over 200 characters is counted as it is typed and refused with a message, never cut", async () => {
    renderAsAdmin(<GenerateStory />);
    const input = screen.getByLabelText("Theme") as HTMLInputElement;
    fireEvent.change(input, { target: { value: "x".repeat(5000) } });
    expect(input.value).toHaveLength(5000);
    expect(screen.getByTestId("theme-count").textContent).toBe("5000 / 200");
    expect(screen.getByText(/The theme is 4800 characters too long/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Generate story" }) as HTMLButtonElement).disabled).toBe(true);
    // The backend refuses it too, whoever calls.
    await expect(admin().mutation(api.admin.generateStory, { hint: "x".repeat(5000) })).rejects.toThrow(/5000 characters; at most 200/);
    expect(await stack().t.run((ctx) => ctx.db.query("storyRuns").collect())).toEqual([]);
  });
});

describe("bug 5: search", () => {
  test("a job id in the search box still honours the filters", async () => {
    const list = (args: Record<string, unknown>) =>
      admin().query(api.admin.listJobs, { paginationOpts: { numItems: 10, cursor: null }, ...args });
    expect((await list({ search: jobIds[4], status: "failed" })).page).toEqual([]);
    expect((await list({ search: jobIds[4], status: "stored" })).page.map((r) => r.jobId)).toEqual([jobIds[4]]);
    expect((await list({ search: jobIds[1], errorCode: "bad_content_type" })).page).toEqual([]);
  });

  test('"ward c" ranks "The Sleeper in Ward C" above "The Stair Counter"', async () => {
    await stack().t.mutation(
      internal.stories.insertStory,
      caseFile({
        title: "The Sleeper in Ward C",
        slug: "sleeper",
        patientName: "Ida Voss",
        imageGenerationPrompt: "portrait of patient #7",
      }),
    );
    await stack().t.mutation(
      internal.stories.insertStory,
      caseFile({ title: "The Stair Counter", slug: "stair", patientName: "Carl Penn", imageGenerationPrompt: "portrait of patient #8" }),
    );
    await settle(stack().t);
    const { page } = await admin().query(api.admin.listJobs, { paginationOpts: { numItems: 10, cursor: null }, search: "ward c" });
    expect(page[0]!.story!.title).toBe("The Sleeper in Ward C");
    expect(page.findIndex((r) => r.story!.title === "The Stair Counter")).toBeGreaterThan(0);
  });
});

describe("bug 6: a failed regeneration", () => {
  test("replaces the queued note, and the page says which attempt painted the portrait it still shows", async () => {
    renderAsAdmin(<JobPage jobId={jobIds[3]!} />);
    await screen.findByRole("img");
    expect(screen.getByTestId("portrait-attempt").textContent).toContain("attempt 1");
    stack().recraft.setFault({ kind: "status", status: 401, body: "invalid api key" });
    fireEvent.click(screen.getByRole("button", { name: "Regenerate portrait" }));
    await waitFor(() => expect(screen.getByTestId("regenerate-note").textContent).toMatch(/^Queued/));
    await settle(stack().t);
    await waitFor(() =>
      expect(screen.getByTestId("regenerate-note").textContent).toBe("Attempt 2 failed (unauthorized): the portrait from attempt 1 stays."),
    );
    expect(screen.getByRole("img")).toBeTruthy();
    expect(screen.getByTestId("portrait-attempt").textContent).toContain("attempt 1");
  });
});

/** The local transport, with a switch that takes the backend away and brings it back. */
function switchableTransport() {
  const inner = localTransport(stack().t, "admin", { pollMs: 25, modules });
  let down = false;
  const links = new Set<(link: Link) => void>();
  const transport: BridgeTransport = {
    run: (calls) => (down ? Promise.reject(new UnreachableError(new Error("refused"))) : inner.run(calls)),
    subscribe(onChange, onLink = () => {}) {
      if (down) {
        // A real reconnect that fails backs off; its next try would be 19 s away.
        onLink({ connected: false, retryAt: Date.now() + 19_000, failures: 5 });
        return () => {};
      }
      links.add(onLink);
      const stop = inner.subscribe(onChange, onLink);
      return () => {
        links.delete(onLink);
        stop();
      };
    },
  };
  return {
    transport,
    goDown() {
      down = true;
      for (const onLink of links) onLink({ connected: false, retryAt: Date.now() + 19_000, failures: 5 });
    },
    comeBack() {
      down = false;
    },
  };
}

describe("bug 7: offline", () => {
  test("dims the counts too, and Reconnect now reconnects at once once the backend is back", async () => {
    const link = switchableTransport();
    renderAsAdmin(<App bridgeAs="admin" />, link.transport);
    await waitFor(() => expect(screen.getByTestId("connection").dataset.state).toBe("live"));
    expect(screen.getByRole("region", { name: "Jobs by status" }).classList.contains("stale")).toBe(false);
    act(() => link.goDown());
    await screen.findByTestId("offline-banner");
    expect(screen.getByRole("region", { name: "Jobs by status" }).classList.contains("stale")).toBe(true);
    link.comeBack();
    fireEvent.click(screen.getByRole("button", { name: "Reconnect now" }));
    await waitFor(() => expect(screen.getByTestId("connection").dataset.state).toBe("live"), { timeout: 1000 });
    expect(screen.queryByTestId("offline-banner")).toBeNull();
    expect(screen.getByRole("region", { name: "Jobs by status" }).classList.contains("stale")).toBe(false);
  });
});

describe("bug 9: error codes and HTTP statuses", () => {
  test("the demo's faults include a 401, so it shows unauthorized", () => {
    expect(DEMO_FAULTS.some((fault) => fault.kind === "status" && fault.status === 401)).toBe(true);
  });

  test("the code filter lists the codes failed jobs have, with counts; the HTTP status filter splits them", async () => {
    renderAsAdmin(<RoutedTable />);
    const codes = screen.getByLabelText("Error code") as HTMLSelectElement;
    await waitFor(() => expect([...codes.options].map((o) => o.textContent)).toEqual(["any", "bad_content_type (1)", "unauthorized (2)"]));
    const http = screen.getByLabelText("HTTP status") as HTMLSelectElement;
    await waitFor(() => expect([...http.options].map((o) => o.textContent)).toEqual(["any", "401 (2)"]));
    fireEvent.change(http, { target: { value: "401" } });
    await waitFor(() => expect(rowIds().sort()).toEqual([jobIds[0], jobIds[1]].sort()));
    expect(window.location.hash).toBe("#/?http=401");
  });
});

describe("features", () => {
  test("a time range keeps the jobs changed within it", async () => {
    await ageFailure(jobIds[0]!, 3 * 60 * 60 * 1000);
    await go("#/?status=failed&range=1h");
    renderAsAdmin(<RoutedTable />);
    await waitFor(() => expect(rowIds().sort()).toEqual([jobIds[1], jobIds[2]].sort()));
    expect((screen.getByLabelText("Changed") as HTMLSelectElement).value).toBe("1h");
    fireEvent.change(screen.getByLabelText("Changed"), { target: { value: "6h" } });
    await waitFor(() => expect(rowIds()).toHaveLength(3));
  });

  test("the job list shows a thumbnail of each stored portrait", async () => {
    renderAsAdmin(<RoutedTable />);
    await waitFor(() => expect(rowIds()).toHaveLength(5));
    const thumbs = [...document.querySelectorAll<HTMLImageElement>("tbody img.thumb")];
    expect(thumbs).toHaveLength(2);
    for (const img of thumbs) expect(img.getAttribute("src")).toMatch(/^\/storage\//);
  });

  test("pause holds new jobs pending, a ceiling caps jobs in flight, resume starts them; each change is recorded", async () => {
    renderAsAdmin(<QueueControl />);
    fireEvent.click(await screen.findByRole("button", { name: "Pause queue" }));
    await waitFor(() => expect(screen.getByTestId("queue-state").textContent).toContain("Paused"));
    for (let i = 10; i < 13; i++) await stack().t.mutation(internal.stories.insertStory, numberedCaseFile(i));
    await settle(stack().t);
    const pending = async () =>
      (
        await stack().t.run((ctx) =>
          ctx.db
            .query("portraitJobs")
            .withIndex("by_status", (q) => q.eq("status", "pending"))
            .collect(),
        )
      ).length;
    expect(await pending()).toBe(3);
    expect(await stack().t.mutation(internal.portraits.dispatchQueue, {})).toBe(0);

    fireEvent.change(screen.getByLabelText("Max in flight"), { target: { value: "1" } });
    fireEvent.click(screen.getByRole("button", { name: "Set" }));
    await waitFor(() => expect(screen.getByTestId("queue-state").textContent).toContain("at most 1 in flight"));
    stack().recraft.setFault(undefined);
    fireEvent.click(screen.getByRole("button", { name: "Resume queue" }));
    await waitFor(() => expect(screen.getByTestId("queue-state").textContent).toContain("Running"));
    const holding = async () =>
      (
        await stack().t.run((ctx) =>
          ctx.db
            .query("portraitJobs")
            .withIndex("by_slot", (q) => q.eq("slot.kind", "held"))
            .collect(),
        )
      ).length;
    await stack().t.mutation(internal.portraits.dispatchQueue, {});
    expect(await holding()).toBeLessThanOrEqual(1);
    await settle(stack().t);
    expect(await pending()).toBe(0);
    const events = await stack().t.run((ctx) => ctx.db.query("queueControlEvents").collect());
    expect(events.map((e) => [e.paused, e.maxConcurrency ?? null, e.by])).toEqual([
      [true, null, ADMIN_IDENTITY.email],
      [true, 1, ADMIN_IDENTITY.email],
      [false, 1, ADMIN_IDENTITY.email],
    ]);
    expect(within(screen.getByRole("list", { name: "Recent changes" })).getAllByRole("listitem")).toHaveLength(3);
    await expect(admin().mutation(api.admin.setConcurrencyCeiling, { ceiling: 0 })).rejects.toThrow(/whole number from 1/);
  });

  test("a story run's page shows its theme and Claude's answers; a failed run is retried from it and ends with its case file", async () => {
    stack().anthropic.setBehavior({ kind: "refusal" });
    const runId = await admin().mutation(api.admin.generateStory, { hint: "a drowned lighthouse" });
    await settle(stack().t);
    renderAsAdmin(<StoryRunPage runId={runId} />);
    await screen.findByRole("heading", { name: "Story run" });
    expect(screen.getByTestId("run-theme").textContent).toBe("a drowned lighthouse");
    const failed = document.querySelector<HTMLElement>('tr[data-to="failed"]')!;
    expect(failed.textContent).toContain("refusal");
    stack().anthropic.setBehavior(undefined);
    const retry = screen.getByRole("button", { name: "Retry story run" });
    retry.focus();
    fireEvent.click(retry);
    await waitFor(() => expect(screen.getByTestId("retry-run-note").textContent).toBe("Queued as a new attempt: Claude is asked again."));
    await settle(stack().t);
    const title = (await stack().t.run(async (ctx) => ctx.db.get((await ctx.db.get(runId))!.storyId!)))!.title;
    await screen.findByRole("heading", { name: title }, { timeout: 5000 });
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("retry-run-note")));
    const inserted = document.querySelector<HTMLElement>('tr[data-to="inserted"]')!;
    const cells = within(inserted)
      .getAllByRole("cell")
      .map((c) => c.textContent);
    expect(cells[1]).toBe("2"); // attempt
    expect(cells[3]).toMatch(/^claude-/); // model
    expect(cells[4]).toMatch(/^\d+ \/ \d+$/); // tokens in / out
    expect(cells[5]).toBe("end_turn");
    expect(screen.getByRole("link", { name: "portrait job" }).getAttribute("href")).toMatch(/^#\/jobs\//);
    expect(await admin().mutation(api.admin.retryStoryRun, { runId })).toBe("not_failed");
  });

  test("cancel a pending job, cancel a requested one (its action stops, nothing is retried), discard a failed one; events kept", async () => {
    stack().setEnv({ PORTRAIT_REQUEST_TIMEOUT_MS: "800" });
    // A request that hangs: the job sits in requested until it is cancelled.
    stack().recraft.setFault({ kind: "hang" });
    const storyId = await stack().t.mutation(internal.stories.insertStory, numberedCaseFile(20));
    const hanging = (await jobOf(stack().t, storyId))._id;
    await waitFor(async () => expect((await stack().t.run((ctx) => ctx.db.get(hanging)))!.status).toBe("requested"), { timeout: 5000 });
    renderAsAdmin(<JobPage jobId={hanging} />);
    const cancel = await screen.findByRole("button", { name: "Cancel job" });
    cancel.focus();
    fireEvent.click(cancel);
    await waitFor(() => expect(screen.getByTestId("cancel-note").textContent).toMatch(/^Cancelled/));
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("cancel-note")));
    stack().recraft.setFault(undefined);
    await settle(stack().t);
    const path = async (id: Id<"portraitJobs">) =>
      (
        await stack().t.run((ctx) =>
          ctx.db
            .query("portraitJobEvents")
            .withIndex("by_job", (q) => q.eq("jobId", id))
            .collect(),
        )
      )
        .map((e) => e.to)
        .join(">");
    expect(await path(hanging)).toBe("pending>requested>cancelled");
    expect((await stack().t.run((ctx) => ctx.db.get(hanging)))!).toMatchObject({ status: "cancelled", slot: { kind: "none" }, attempt: 1 });
    cleanup();

    // A failed job discarded leaves the failed filter; its failure stays in its events.
    expect(await admin().mutation(api.admin.cancelJob, { jobId: jobIds[2]! })).toBe("cancelled");
    expect(await path(jobIds[2]!)).toBe("pending>requested>failed>cancelled");
    const failedNow = await admin().query(api.admin.listJobs, { paginationOpts: { numItems: 10, cursor: null }, status: "failed" });
    expect(failedNow.page.map((r) => r.jobId).sort()).toEqual([jobIds[0], jobIds[1]].sort());
    const discarded = (
      await stack().t.run((ctx) =>
        ctx.db
          .query("portraitJobEvents")
          .withIndex("by_job", (q) => q.eq("jobId", jobIds[2]!))
          .collect(),
      )
    ).at(-1)!;
    expect(discarded.details?.reason).toBe(`discarded by ${ADMIN_IDENTITY.email} from the admin console`);
    // A pending job (the queue paused) is cancelled before it starts.
    await admin().mutation(api.admin.setQueuePaused, { paused: true });
    const waiting = (await jobOf(stack().t, await stack().t.mutation(internal.stories.insertStory, numberedCaseFile(21))))!._id;
    expect(await admin().mutation(api.admin.cancelJob, { jobId: waiting })).toBe("cancelled");
    await admin().mutation(api.admin.setQueuePaused, { paused: false });
    await settle(stack().t);
    expect(await path(waiting)).toBe("pending>cancelled");
    // Stored jobs are not cancellable; a cancelled one can be retried.
    expect(await admin().mutation(api.admin.cancelJob, { jobId: jobIds[3]! })).toBe("not_cancellable");
    expect(await admin().query(api.admin.statusCounts, {})).toMatchObject({ failed: 2, stored: 2, cancelled: 3 });
    expect(await admin().mutation(api.admin.retryJob, { jobId: jobIds[2]! })).toBe("queued");
    await settle(stack().t);
    expect((await stack().t.run((ctx) => ctx.db.get(jobIds[2]!)))!).toMatchObject({ status: "stored", attempt: 2 });
  });

  test("metrics per hour: the most jobs waiting and in flight from the snapshots, and attempt latency p50/p95", async () => {
    await admin().mutation(api.admin.setQueuePaused, { paused: true });
    for (let i = 30; i < 33; i++) await stack().t.mutation(internal.stories.insertStory, numberedCaseFile(i));
    await settle(stack().t);
    await stack().t.mutation(internal.queueMetrics.snapshot, {});
    await admin().mutation(api.admin.setQueuePaused, { paused: false });
    await settle(stack().t);
    await stack().t.mutation(internal.queueMetrics.snapshot, {});
    renderAsAdmin(<QueueMetrics />);
    const rows = await screen.findAllByRole("row", undefined, { timeout: 5000 });
    const hour = rows.find((r) => r.dataset.hour)!;
    const cells = within(hour)
      .getAllByRole("cell")
      .map((c) => c.textContent);
    // Waiting 3 at the first snapshot, 0 in flight at both; every attempt downloaded in the hour.
    const downloaded = (
      await stack().t.run((ctx) =>
        ctx.db
          .query("portraitJobEvents")
          .withIndex("by_to", (q) => q.eq("to", "downloaded"))
          .collect(),
      )
    ).length;
    expect(downloaded).toBe(5);
    expect(cells.slice(0, 3)).toEqual(["3", "0", "5"]);
    expect(cells[3]).toMatch(/^\d+(\.\d)? (ms|s)$/);
    const { hours } = await admin().query(api.admin.queueMetrics, { now: Date.now() + 1000 });
    expect(hours).toHaveLength(24);
    expect(hours.at(-1)).toMatchObject({ samples: 2, maxPending: 3, maxInFlight: 0, attempts: 5, attemptsCapped: false });
    // A deployment takes the snapshots every 5 minutes.
    const registered = (crons as unknown as { crons: Record<string, unknown> }).crons;
    expect(registered["snapshot the portrait queue"]).toMatchObject({
      name: "queueMetrics:snapshot",
      schedule: { type: "interval", minutes: 5 },
    });
  });

  test("error message search finds failed jobs by words in their message, with the other filters, and lives in the address", async () => {
    renderAsAdmin(<RoutedTable />);
    await waitFor(() => expect(rowIds()).toHaveLength(5));
    fireEvent.change(screen.getByLabelText("Error message"), { target: { value: "INVALID API" } });
    await waitFor(() => expect(rowIds().sort()).toEqual([jobIds[0], jobIds[1]].sort()));
    expect(window.location.hash).toBe("#/?msg=INVALID+API");
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "bad_content_type" } });
    await screen.findByText("No jobs match these filters.");
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "" } });
    fireEvent.change(screen.getByLabelText("Error message"), { target: { value: "text/html" } });
    await waitFor(() => expect(rowIds()).toEqual([jobIds[2]]));
  });
});
