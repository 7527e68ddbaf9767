import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    server: { deps: { inline: ["convex-test"] } },
    silent: "passed-only",
    // The backend's logger (convex/lib/log.ts) is quiet in tests unless asked: `LOG_LEVEL=DEBUG npx vitest run ...`,
    // or captureLogs() in a test that checks a line.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "OFF" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: "backend",
          // The loopback fakes are node:http servers in the test process, and the
          // pipeline's real fetch runs against them, so the suites run under Node.
          environment: "node",
          include: ["tests/**/*.test.ts"],
        },
      },
      {
        extends: true,
        plugins: [react()],
        // The admin app's components, on the real backend functions (convex-test).
        test: { name: "admin", environment: "./admin/test/environment.ts", include: ["admin/**/*.test.tsx"] },
      },
    ],
  },
});
