/**
 * Global setup of the browser suites (vitest project "e2e"): once per run, one
 * Chromium (a browser server every test file connects to, see `browser()`
 * below) and the two bridge-mode builds of the admin app, the demo's and the
 * Convex Auth one, built side by side while Chromium starts.
 *
 * The demo's build is made with VITE_AUTH=convex-auth in the environment, as a
 * deployment's .env.local would have it: buildAdmin fixes VITE_AUTH itself,
 * and signin.e2e.test.ts checks that this build still has no sign-in.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildAdmin } from "../../scripts/lib/bridge";
import { launchChromiumServer } from "../../scripts/lib/browser";

declare module "vitest" {
  export interface ProvidedContext {
    /** The shared Chromium's endpoint, for connectChromium. */
    chromiumEndpoint: string;
    /** The demo's build of the admin app (`?as=` identities), built with VITE_AUTH=convex-auth in the environment. */
    adminDist: string;
    /** The Convex Auth build of the admin app (a sign-in form). */
    adminAuthDist: string;
  }
}

export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), "e2e-admin-"));
  const savedViteAuth = process.env.VITE_AUTH;
  process.env.VITE_AUTH = "convex-auth";
  const started = await Promise.allSettled([
    launchChromiumServer(),
    buildAdmin(join(root, "demo"), "none"),
    buildAdmin(join(root, "convex-auth"), "convex-auth"),
  ]);
  if (savedViteAuth === undefined) delete process.env.VITE_AUTH;
  else process.env.VITE_AUTH = savedViteAuth;
  const [chromium, dist, authDist] = started;
  if (chromium.status === "rejected" || dist.status === "rejected" || authDist.status === "rejected") {
    if (chromium.status === "fulfilled") await chromium.value.close();
    await rm(root, { recursive: true, force: true });
    throw started.find((result) => result.status === "rejected")!.reason;
  }
  project.provide("chromiumEndpoint", chromium.value.wsEndpoint());
  project.provide("adminDist", dist.value);
  project.provide("adminAuthDist", authDist.value);
  return async () => {
    await chromium.value.close();
    await rm(root, { recursive: true, force: true });
  };
}
