/**
 * The admin app's views on data from the real backend functions: the
 * project's Convex functions on convex-test with the loopback fakes (as in
 * the backend suites), reached through the bridge client and executor in-process
 * (scripts/lib/bridge.ts localTransport), so no fixture is hand-written.
 */
import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import type { ReactElement } from "react";
import { beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { numberedCaseFile, settle } from "../harness";
import { adminSuite, fiveJobs, type Caller } from "./render";
import { App, Counts } from "../../admin/src/App";
import { Audit } from "../../admin/src/Audit";
import { reconnectDelayMs } from "../../admin/src/bridgeClient";
import { onCaughtError } from "../../admin/src/errors";
import { formatDateTime } from "../../admin/src/format";
import { JobPage } from "../../admin/src/JobPage";
import { JobTable } from "../../admin/src/JobTable";
import { parseRoute, useRoute } from "../../admin/src/route";

const { stack, ui } = adminSuite();
let jobIds: Id<"portraitJobs">[];

const story = numberedCaseFile;

/** The five case files of `fiveJobs`; then 0 is retried and stored on its second attempt. */
beforeEach(async () => {
  jobIds = await fiveJobs(stack());
  await stack().t.mutation(internal.portraits.retryJob, { jobId: jobIds[0]! });
  await settle(stack().t);
});

const renderAs = (as: Caller, element: ReactElement) => ui.render(as, element);

/** The job list as the app routes it, with a small page and no search delay. */
function RoutedTable() {
  const route = useRoute();
  return route.page === "jobs" ? <JobTable route={route} pageSize={2} searchDelayMs={0} /> : <p>elsewhere</p>;
}

const go = (hash: string) => act(() => void (window.location.hash = hash));
const rowIds = () => bodyRows().map((r) => r.dataset.jobId);
const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{3})?$/;

const countOf = (status: string) => screen.getByTestId(`count-${status}`).querySelector(".count-n")!.textContent;
const bodyRows = () => [...document.querySelectorAll("tbody tr")] as HTMLElement[];

describe("admin views on the real backend", () => {
  test("status counts are exact and tick live", async () => {
    renderAs("admin", <Counts />);
    await ui.synced();
    expect(["pending", "requested", "downloaded", "stored", "failed"].map(countOf)).toEqual(["0", "0", "0", "3", "2"]);

    await stack().t.mutation(internal.stories.insertStory, story(5));
    await settle(stack().t);
    await ui.synced();
    expect(countOf("stored")).toBe("4");
    expect(countOf("failed")).toBe("2");
  });

  test("the job table pages, filters by status and code, and searches by title, patient and job id", async () => {
    renderAs("admin", <RoutedTable />);
    await ui.synced();
    expect(bodyRows()).toHaveLength(2);
    // Newest first.
    expect(bodyRows()[0]!.textContent).toContain("The Ward of Whisper4");
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await ui.synced();
    expect(bodyRows()).toHaveLength(4);
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await ui.synced();
    expect(bodyRows()).toHaveLength(5);
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
    const first = bodyRows()[4];
    expect(first!.textContent).toContain("The Ward of Whisper0");
    expect(first!.textContent).toContain("Edith Marrow0");
    expect(within(first!).getAllByRole("cell")[2]!.textContent).toBe("2"); // attempt

    // New jobs join the loaded pages live, at the top, without duplicating or dropping a row.
    await stack().t.mutation(internal.stories.insertStory, story(5));
    await stack().t.mutation(internal.stories.insertStory, story(6));
    await ui.synced();
    expect(bodyRows()).toHaveLength(7);
    const ids = bodyRows().map((r) => r.dataset.jobId);
    expect(new Set(ids).size).toBe(7);
    expect(ids.slice(2)).toEqual([...jobIds].reverse());
    expect(bodyRows()[0]!.textContent).toContain("The Ward of Whisper6");
    await settle(stack().t);

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "failed" } });
    await ui.synced();
    expect(rowIds().sort()).toEqual([jobIds[1], jobIds[2]].sort());
    expect(window.location.hash).toBe("#/?status=failed");
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "unauthorized" } });
    await ui.synced();
    expect(rowIds()).toEqual([jobIds[1]]);
    expect(window.location.hash).toBe("#/?status=failed&code=unauthorized");
    // The error is written out, not only in a tooltip.
    expect(bodyRows()[0]!.querySelector(".error-cell")!.textContent).toMatch(/^unauthorized .*401/);
    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "stored" } });
    await ui.synced();
    screen.getByText("No jobs match these filters.");

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "" } });
    fireEvent.change(screen.getByLabelText("Error code"), { target: { value: "" } });
    await ui.synced();
    expect(window.location.hash).toBe("#/");
    const search = screen.getByLabelText("Search");
    fireEvent.change(search, { target: { value: "Whisper3" } });
    await ui.synced();
    expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[3]]);
    fireEvent.change(search, { target: { value: "marrow2" } });
    await ui.synced();
    expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[2]]);
    fireEvent.change(search, { target: { value: jobIds[4] } });
    await ui.synced();
    expect(bodyRows().map((r) => r.dataset.jobId)).toEqual([jobIds[4]]);
    // A patient number's digits alone (P-1003).
    fireEvent.change(search, { target: { value: "1003" } });
    await ui.synced();
    expect(rowIds()).toEqual([jobIds[3]]);
    expect(window.location.hash).toBe("#/?q=1003");
    fireEvent.change(search, { target: { value: "nobody" } });
    await ui.synced();
    screen.getByText("No jobs match these filters.");
  });

  test("filters, search and sort come from the address, so a shared link or Back restores them", async () => {
    await go("#/?status=failed&q=Whisper1");
    renderAs("admin", <RoutedTable />);
    await waitFor(() => expect(rowIds()).toEqual([jobIds[1]]));
    expect((screen.getByLabelText("Status") as HTMLSelectElement).value).toBe("failed");
    expect((screen.getByLabelText("Search") as HTMLInputElement).value).toBe("Whisper1");
    // Another address (as Back would give) puts its own state in the controls.
    await go("#/?code=bad_content_type");
    await waitFor(() => expect(rowIds()).toEqual([jobIds[2]]));
    expect((screen.getByLabelText("Search") as HTMLInputElement).value).toBe("");
    expect((screen.getByLabelText("Error code") as HTMLSelectElement).value).toBe("bad_content_type");
    expect(parseRoute(window.location.hash)).toEqual({
      page: "jobs",
      code: "bad_content_type",
      status: undefined,
      q: undefined,
      sort: undefined,
      dir: undefined,
    });
  });

  test("a status-filtered list is ordered by last change and shows it; started, finished and total sort", async () => {
    await go("#/?status=stored");
    renderAs("admin", <RoutedTable />);
    await waitFor(() => expect(bodyRows()).toHaveLength(2));
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(bodyRows()).toHaveLength(3));
    expect(screen.getByTestId("jobs-order").textContent).toContain("last change first");
    const changed = () => bodyRows().map((r) => r.querySelector('[data-col="changed"] time')!.getAttribute("datetime")!);
    expect(changed()).toEqual([...changed()].sort().reverse());
    // Job 0 was stored last (its second attempt), though created first.
    expect(rowIds()[0]).toBe(jobIds[0]);
    expect(document.querySelector('th[aria-sort="descending"]')!.textContent).toContain("Last change");
    for (const cell of document.querySelectorAll("tbody time")) expect(cell.textContent).toMatch(DATE_TIME);

    const jobs = await stack().t.run(async (ctx) => Promise.all(jobIds.map((id) => ctx.db.get(id))));
    const total = (id: string) => {
      const job = jobs.find((j) => j!._id === id)!;
      return job.updatedAt - job.createdAt;
    };
    fireEvent.click(screen.getByRole("button", { name: /^Sort by total/ }));
    await waitFor(() => expect(screen.getByTestId("jobs-order").textContent).toContain("sorted by total (descending) over the 3 loaded"));
    expect(window.location.hash).toBe("#/?status=stored&sort=total&dir=desc");
    const totals = () => rowIds().map((id) => total(id!));
    expect(totals()).toEqual([...totals()].sort((a, b) => b - a));
    fireEvent.click(screen.getByRole("button", { name: /^Sort by total/ }));
    await waitFor(() => expect(screen.getByTestId("jobs-order").textContent).toContain("(ascending)"));
    expect(window.location.hash).toContain("dir=asc");
    expect(totals()).toEqual([...totals()].sort((a, b) => a - b));
    // The table shows each row's figures.
    const row = bodyRows()[0];
    expect(row!.querySelector('[data-col="total"]')!.textContent).toMatch(/^\d+(\.\d)? (ms|s)$/);
    expect(row!.querySelector('[data-col="started"] time')).not.toBeNull();
    expect(row!.querySelector('[data-col="finished"] time')).not.toBeNull();
  });

  test("a job page shows the portrait, the story and every transition across attempts", async () => {
    renderAs("admin", <JobPage jobId={jobIds[0]!} />);
    await screen.findByRole("heading", { name: "The Ward of Whisper0" });
    const portrait = screen.getByRole("img", { name: "Portrait of Edith Marrow0" }) as HTMLImageElement;
    expect(portrait.getAttribute("src")).toMatch(/^\/storage\//);
    expect(screen.getByText(/Ward C was sealed/)).toBeTruthy();
    expect(document.querySelectorAll(".chapters li")).toHaveLength(8);

    const timeline = document.querySelector<HTMLElement>("table.timeline")!;
    const rows = within(timeline).getAllByRole("row").slice(1);
    for (const row of rows) expect(row.querySelector("time")!.textContent).toMatch(DATE_TIME);
    const transitions = rows.map((row) =>
      within(row)
        .getAllByRole("cell")
        .slice(1, 3)
        .map((c) => c.textContent)
        .join(" "),
    );
    expect(transitions).toEqual([
      "1 new → pending",
      "1 pending → requested",
      "1 requested → failed",
      "2 failed → pending",
      "2 pending → requested",
      "2 requested → downloaded",
      "2 downloaded → stored",
    ]);
    expect(rows[2]!.textContent).toContain("unauthorized");
    expect(within(rows[2]!).getAllByRole("cell")[4]!.textContent).toBe("401");
    const downloaded = (await stack().t.run((ctx) => ctx.db.query("portraitJobEvents").collect())).find(
      (e) => e.jobId === jobIds[0] && e.to === "downloaded",
    )!;
    expect(rows[5]!.textContent).toContain(downloaded.details!.recraftRequestId!);
    expect(rows[6]!.textContent).toContain("image/png");
  });

  test("a double-click on Retry job queues one retry and says so", async () => {
    renderAs("admin", <JobPage jobId={jobIds[1]!} />);
    const button = await screen.findByRole("button", { name: "Retry job" });
    fireEvent.click(button);
    fireEvent.click(button);
    await waitFor(() => expect(screen.getByTestId("retry-note").textContent).toBe("Queued as a new attempt."));
    await settle(stack().t);
    const events = await stack().t.run((ctx) =>
      ctx.db
        .query("portraitJobEvents")
        .withIndex("by_job", (q) => q.eq("jobId", jobIds[1]!))
        .collect(),
    );
    expect(events.filter((e) => e.from === "failed" && e.to === "pending")).toHaveLength(1);
    expect(await stack().t.run((ctx) => ctx.db.get(jobIds[1]!))).toMatchObject({ status: "stored", attempt: 2 });
    await waitFor(() => expect(screen.queryByRole("button", { name: "Retry job" })).toBeNull());
    expect(screen.getByTestId("retry-note").textContent).toBe("Queued as a new attempt.");
  });

  test("the job page shows the raw job and events as JSON and copies them", async () => {
    renderAs("admin", <JobPage jobId={jobIds[0]!} />);
    await screen.findByRole("heading", { name: "The Ward of Whisper0" });
    const detail = (await stack().t.withIdentity(ADMIN_IDENTITY).query(api.admin.getJob, { jobId: jobIds[0]! }))!;
    fireEvent.click(screen.getByRole("button", { name: "Copy Job JSON" }));
    await waitFor(() => expect(screen.getAllByText("Copied.")).toHaveLength(1));
    expect(JSON.parse(await navigator.clipboard.readText())).toEqual(detail.job);
    fireEvent.click(screen.getByRole("button", { name: "Copy Events JSON" }));
    await waitFor(() => expect(screen.getAllByText("Copied.")).toHaveLength(2));
    const events = JSON.parse(await navigator.clipboard.readText());
    expect(events.map((e: { to: string }) => e.to)).toEqual(detail.events.map((e) => e.to));
    expect(events).toHaveLength(7);
  });

  test("the audit view groups failures by code, retries a code, and shows step latencies", async () => {
    renderAs("admin", <Audit />);
    await ui.synced();
    const unauthorized = screen.getByText("unauthorized", { selector: ".code" }).closest("tr")!;
    const cells = () =>
      within(unauthorized)
        .getAllByRole("cell")
        .map((c) => c.textContent);
    expect(cells().slice(0, 3)).toEqual(["2", "2", "1"]); // failures, jobs, still failed
    expect(cells()[3]).toContain("401");
    const other = document.querySelector<HTMLElement>('tr[data-code="bad_content_type"]')!;
    expect(within(other).getAllByRole("cell")[2]!.textContent).toBe("1");

    const latency = document.querySelectorAll<HTMLElement>("tr[data-step]");
    expect([...latency].map((r) => r.dataset.step)).toEqual(["queue", "request", "download", "store", "total"]);
    for (const row of latency) expect(within(row).getAllByRole("cell")[0]!.textContent).toMatch(/^\d+(\.\d)? (ms|s)$/);

    // A bulk retry asks first; Cancel changes nothing.
    fireEvent.click(screen.getByRole("button", { name: "Retry all unauthorized jobs" }));
    await ui.synced();
    const dialog = screen.getByRole("alertdialog");
    // Every job failed with the code now, whatever its age (issue 16): one here.
    expect(dialog.textContent).toContain("all 1 job failed with unauthorized now");
    expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Retry 1 job" }));
    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("alertdialog")).toBeNull();
    expect(await stack().t.run((ctx) => ctx.db.get(jobIds[1]!))).toMatchObject({ status: "failed", attempt: 1 });
    fireEvent.click(screen.getByRole("button", { name: "Retry all unauthorized jobs" }));
    await ui.synced();
    fireEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Retry 1 job" }));
    await ui.synced();
    await settle(stack().t);
    await ui.synced();
    expect(screen.getByText("Queued 1 job.")).toBeTruthy();
    expect(screen.getByTestId("still-failed-unauthorized").textContent).toBe("0");
    expect(await stack().t.run((ctx) => ctx.db.get(jobIds[1]!))).toMatchObject({ status: "stored", attempt: 2 });
  });

  test("View jobs lists the jobs that failed with a code, including those retried since", async () => {
    await stack().t.mutation(internal.portraits.retryJob, { jobId: jobIds[1]! });
    await settle(stack().t);
    renderAs("admin", <App bridgeAs="admin" />);
    await go("#/audit");
    await waitFor(() => expect(screen.getByTestId("still-failed-unauthorized").textContent).toBe("0"));
    // Both unauthorized jobs were retried and stored: none is failed now, both are listed.
    fireEvent.click(within(document.querySelector<HTMLElement>('tr[data-code="unauthorized"]')!).getByRole("link", { name: "View jobs" }));
    const list = await screen.findByRole("list", { name: "Jobs that failed with unauthorized" });
    expect(window.location.hash).toBe("#/audit?code=unauthorized");
    const items = within(list).getAllByRole("listitem");
    expect(items.map((li) => li.textContent).sort()).toEqual(["stored The Ward of Whisper0", "stored The Ward of Whisper1"]);
    expect(within(items[0]!).getByRole("link").getAttribute("href")).toMatch(/^#\/jobs\//);
  });

  test("the activity chart counts stored and failed per bucket and keeps its range in the address", async () => {
    renderAs("admin", <App bridgeAs="admin" />);
    await go("#/audit");
    await waitFor(() => expect(screen.getByTestId("activity-summary").textContent).toContain("Last 24 hours: 3 stored, 3 failed attempts"));
    expect(document.querySelectorAll("[data-bucket]")).toHaveLength(24);
    fireEvent.click(screen.getByRole("button", { name: "7d" }));
    await waitFor(() => expect(screen.getByTestId("activity-summary").textContent).toContain("Last 7 days: 3 stored, 3 failed attempts"));
    expect(window.location.hash).toBe("#/audit?range=7d");
    expect(screen.getByRole("button", { name: "7d" }).getAttribute("aria-pressed")).toBe("true");
    expect(document.querySelectorAll("[data-bucket]")).toHaveLength(28);
    // The last bucket holds them all, drawn as bars with heights.
    const last = document.querySelector('[data-bucket="27"]')!;
    expect(Number(last.querySelector(".bar-stored")!.getAttribute("height"))).toBeGreaterThan(0);
    expect(last.querySelector("title")!.textContent).toMatch(/3 stored, 3 failed$/);
    // The same figures as a table: only buckets with events.
    const table = document.querySelector(".chart-table table")!;
    expect(
      [...table.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")].slice(1).map((td) => td.textContent)),
    ).toEqual([["3", "3"]]);
  });

  test("a malformed link shows a not-found view, not a blank page, and the console goes on", async () => {
    await go("#/jobs/%E0%A4%A");
    renderAs("admin", <App bridgeAs="admin" />);
    await screen.findByRole("heading", { name: "Nothing at this address" });
    expect(document.body.textContent).toContain("#/jobs/%E0%A4%A");
    await go("#/");
    await waitFor(() => expect(bodyRows()).toHaveLength(5));
  });

  test("a new view names the document and takes focus at its heading", async () => {
    renderAs("admin", <App bridgeAs="admin" />);
    await ui.synced();
    expect(bodyRows()).toHaveLength(5);
    expect(document.title).toBe("Jobs · Case File Portraits admin");
    await go(`#/jobs/${jobIds[3]}`);
    await ui.synced();
    const heading = screen.getByRole("heading", { name: "The Ward of Whisper3" });
    expect(document.activeElement).toBe(heading);
    expect(document.title).toBe("Job: The Ward of Whisper3 · Case File Portraits admin");
    await go("#/audit");
    await ui.synced();
    expect(document.activeElement).toBe(screen.getByRole("heading", { name: "Activity & failures" }));
    expect(document.title).toBe("Activity & failures · Case File Portraits admin");
    // A filter is not a new view: focus stays where the operator is.
    await go("#/");
    await ui.synced();
    const select = screen.getByLabelText("Status");
    select.focus();
    fireEvent.change(select, { target: { value: "failed" } });
    await ui.synced();
    expect(bodyRows()).toHaveLength(2);
    expect(document.activeElement).toBe(select);
  });

  test("reconnects back off exponentially (1 s, 2 s, 4 s … 30 s) with bounded jitter", () => {
    const low = [0, 1, 2, 3, 4, 5, 6, 10].map((n) => reconnectDelayMs(n, () => 0));
    expect(low).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(reconnectDelayMs(2, () => 0.999)).toBeLessThanOrEqual(4800);
  });

  test("times are one format everywhere: local date and 24-hour time", () => {
    const at = new Date(2026, 0, 2, 15, 4, 5, 67).getTime();
    expect(formatDateTime(at)).toBe("2026-01-02 15:04:05");
    expect(formatDateTime(at, { ms: true })).toBe("2026-01-02 15:04:05.067");
  });

  test("a non-admin sees the forbidden page and no data; anonymous is asked to sign in; the way back keeps the view", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    await go("#/audit?range=7d");
    for (const as of ["guest", "anon"] as const) {
      const { unmount } = ui.render(as, <App bridgeAs={as} />, { onCaughtError });
      await screen.findByRole("heading", { name: "Restricted ward" });
      expect(document.body.textContent).not.toMatch(/Whisper|Marrow|stored|failed/);
      expect(screen.queryByRole("table")).toBeNull();
      const text = document.querySelector(".forbidden")!.textContent!;
      if (as === "anon") {
        expect(text).toContain("You are not signed in");
        expect(text).not.toContain("not on the staff list");
      } else {
        expect(text).toContain("your account is not on the staff list");
      }
      expect(screen.getByRole("link", { name: "Continue as the demo admin" }).getAttribute("href")).toBe("?as=admin#/audit?range=7d");
      unmount();
    }
    // The refusal is an expected state: React's caught-error report does not log it.
    expect(errors).not.toHaveBeenCalled();
    errors.mockRestore();
    await go("#/");
    renderAs("admin", <App bridgeAs="admin" />);
    await waitFor(() => expect(bodyRows()).toHaveLength(5));
    expect(screen.queryByRole("heading", { name: "Restricted ward" })).toBeNull();
  });
});
