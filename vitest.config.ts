import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    server: { deps: { inline: ["convex-test"] } },
    silent: "passed-only",
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
