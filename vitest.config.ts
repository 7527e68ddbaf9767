import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The slow tier (`npm run test:e2e`, run by .ci/run after `npm test`): the browser suites, the quick bench
// and the transaction bounds at scale (a 20,000-job backfill).
const SCALE = ["tests/bench.test.ts", "tests/bounds.test.ts"];
const SLOW = ["tests/e2e/**", ...SCALE];

export default defineConfig({
  test: {
    server: { deps: { inline: ["convex-test"] } },
    silent: "passed-only",
    // The backend's logger (convex/lib/log.ts) is quiet in tests unless asked: `LOG_LEVEL=DEBUG npx vitest run ...`,
    // or captureLogs() in a test that checks a line.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "OFF" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Most of a suite's time is spent waiting (provider latencies, pacing windows, timeouts under test),
    // so two files run at once even on two cores, where vitest's default is one. Not more: the suites'
    // request timeouts are real time, and a starved event loop turns a slow answer into a timeout.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "backend",
          // The loopback fakes are node:http servers in the test process, and the
          // pipeline's real fetch runs against them, so the suites run under Node.
          environment: "node",
          include: ["tests/**/*.test.ts"],
          exclude: SLOW,
        },
      },
      {
        extends: true,
        plugins: [react()],
        // The admin app's components, on the real backend functions (convex-test).
        test: {
          name: "admin",
          environment: "./tests/admin/environment.ts",
          include: ["tests/admin/**/*.test.tsx"],
          setupFiles: ["./tests/admin/setup.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          environment: "node",
          include: ["tests/e2e/**/*.e2e.test.ts"],
          // One Chromium and one build of each admin app variant for every browser suite of the run.
          globalSetup: ["tests/e2e/setup.ts"],
          // One file at a time: a browser suite keeps both cores busy (Chromium, the page's polling, the backend).
          maxWorkers: 1,
        },
      },
      {
        extends: true,
        // Alone too: the bench measures this machine.
        test: { name: "bench", environment: "node", include: SCALE, maxWorkers: 1 },
      },
    ],
  },
});
