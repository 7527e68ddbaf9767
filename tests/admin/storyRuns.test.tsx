/**
 * The story runs view and the "Generate story" button, on the real backend
 * functions (convex-test with the loopback fakes, reached through the bridge
 * client in-process), as in admin.test.tsx.
 */
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import type { ReactElement } from "react";
import { describe, expect, test } from "vitest";
import { jobOf, settle } from "../harness";
import { adminSuite } from "./render";
import { GenerateStory } from "../../admin/src/App";
import { StoryRuns } from "../../admin/src/StoryRuns";

const { stack, ui } = adminSuite();

const renderAsAdmin = (element: ReactElement) => ui.render("admin", element);

const generate = (hint?: string) => {
  if (hint) fireEvent.change(screen.getByLabelText("Theme"), { target: { value: hint } });
  fireEvent.click(screen.getByRole("button", { name: "Generate story" }));
};

describe("story runs in the admin console", () => {
  test("Generate story follows its run to the case file and links its portrait job; the list shows the run", async () => {
    renderAsAdmin(
      <>
        <GenerateStory />
        <StoryRuns route={{ page: "stories" }} />
      </>,
    );
    await ui.synced();
    expect(screen.getByText(/No story runs yet/)).toBeTruthy();
    generate("a drowned lighthouse keeper");
    await ui.synced();
    await settle(stack().t);
    await ui.synced();
    expect(stack().anthropic.servedCaseFiles).toHaveLength(1);
    const title = stack().anthropic.servedCaseFiles[0]!.title;
    const status = document.querySelector("form.generate [role=status]") as HTMLElement;
    const run = (await stack().t.run((ctx) => ctx.db.query("storyRuns").collect()))[0]!;
    const job = await jobOf(stack().t, run.storyId!);
    expect(within(status).getByRole("link", { name: title }).getAttribute("href")).toBe(`#/jobs/${job!._id}`);
    expect(within(status).getByText("stored")).toBeTruthy();

    const row = document.querySelector<HTMLElement>(`tr[data-run-id="${run._id}"]`)!;
    expect(row).not.toBeNull();
    expect(within(row).getByText("inserted")).toBeTruthy();
    expect(within(row).getByRole("link", { name: title }).getAttribute("href")).toBe(`#/jobs/${job!._id}`);
  });

  test("a run that Claude refuses ends with its code on the button and in the list", async () => {
    stack().anthropic.setBehavior({ kind: "refusal" });
    renderAsAdmin(
      <>
        <GenerateStory />
        <StoryRuns route={{ page: "stories" }} />
      </>,
    );
    generate();
    await ui.synced();
    await settle(stack().t);
    await ui.synced();
    expect(document.querySelector('[data-run-status="failed"]')?.textContent).toMatch(/Failed: refusal Claude refused/);
    expect(document.querySelector("tr[data-run-id] .code")?.textContent).toBe("refusal");
  });

  test("a 529 shows the retry, then the case file", async () => {
    stack().setEnv({ STORY_RETRY_DELAY_MS: "1500" });
    stack().anthropic.setBehavior((index) => (index < 3 ? { kind: "overloaded" } : undefined));
    renderAsAdmin(<GenerateStory />);
    generate();
    await waitFor(
      () => expect(document.querySelector('[data-run-status="pending"]')?.textContent).toMatch(/Claude failed \(overloaded\); retrying at/),
      {
        timeout: 5000,
      },
    );
    await waitFor(() => expect(document.querySelector('[data-run-status="inserted"]')).not.toBeNull(), { timeout: 8000 });
  });
});
