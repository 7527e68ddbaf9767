/**
 * The backfill control and the regenerate button, on the real backend
 * functions (convex-test and the loopback fakes, through the bridge client).
 */
import { fireEvent, screen } from "@testing-library/react";
import type { ReactElement } from "react";
import { expect, test } from "vitest";
import { internal } from "../../convex/_generated/api";
import { portraitPng } from "../../scripts/fakes/png";
import { caseFile, gameStoryDocument, jobOf, numberedCaseFile, settle } from "../harness";
import { adminSuite } from "./render";
import { Backfill } from "../../admin/src/Backfill";
import { JobPage } from "../../admin/src/JobPage";

let paintings = 0;
// Every painting differs, so a regenerated portrait has its own URL.
const { stack, ui } = adminSuite({ recraft: { paint: (prompt) => portraitPng(`${prompt} #${++paintings}`) } });

const renderAsAdmin = (element: ReactElement) => ui.render("admin", element);

const progressText = () => screen.getByTestId("backfill-progress").textContent;

test("the backfill button starts a run and its progress updates live to done", async () => {
  await stack().t.mutation(internal.stories.insertStory, caseFile());
  await settle(stack().t);
  const oldStories = await stack().t.run(async (ctx) => {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await ctx.db.insert("stories", gameStoryDocument(numberedCaseFile(i), Date.UTC(2025, 0, i + 1))));
    }
    return ids;
  });

  renderAsAdmin(<Backfill />);
  await ui.synced();
  expect(progressText()).toMatch(/No backfill has run/);
  fireEvent.click(screen.getByRole("button", { name: "Backfill portraits" }));
  await ui.synced();
  await settle(stack().t);
  await ui.synced();
  expect(progressText()).toMatch(/^Done: 4 stories scanned, 3 jobs created \(1 had a portrait, 0 a job\), finished /);
  expect((screen.getByRole("button", { name: "Backfill portraits" }) as HTMLButtonElement).disabled).toBe(false);
  for (const storyId of oldStories) expect((await jobOf(stack().t, storyId)).status).toBe("stored");
});

test("a stored job's page regenerates its portrait; the new one replaces the old when stored", async () => {
  const storyId = await stack().t.mutation(internal.stories.insertStory, caseFile());
  await settle(stack().t);
  const job = await jobOf(stack().t, storyId);
  renderAsAdmin(<JobPage jobId={job!._id} />);
  const portrait = (await screen.findByRole("img", { name: "Portrait of Edith Marrow" })) as HTMLImageElement;
  const oldSrc = portrait.getAttribute("src");
  expect(oldSrc).toMatch(/^\/storage\//);

  fireEvent.click(screen.getByRole("button", { name: "Regenerate portrait" }));
  await screen.findByText("Queued: the current portrait stays until the new one is stored.");
  await settle(stack().t);
  const regenerated = await jobOf(stack().t, storyId);
  expect(regenerated).toMatchObject({ status: "stored", attempt: 2 });
  expect(regenerated!.storageId).not.toBe(job!.storageId);
  const src = () => screen.getByRole("img", { name: "Portrait of Edith Marrow" }).getAttribute("src");
  await ui.synced();
  expect(src()).not.toBe(oldSrc);
  expect(src()).toMatch(/^\/storage\//);
  expect(screen.getByText("attempt 2")).toBeTruthy();
});

test("a failed job's page offers a retry, not a regeneration", async () => {
  stack().recraft.setFault({ kind: "status", status: 401, body: "invalid api key" });
  const storyId = await stack().t.mutation(internal.stories.insertStory, caseFile());
  await settle(stack().t);
  renderAsAdmin(<JobPage jobId={(await jobOf(stack().t, storyId))._id} />);
  await screen.findByRole("button", { name: "Retry job" });
  expect(screen.queryByRole("button", { name: "Regenerate portrait" })).toBeNull();
});
