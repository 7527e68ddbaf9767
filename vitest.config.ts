import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The loopback fakes are node:http servers in the test process, and the
    // pipeline's real fetch runs against them, so the suites run under Node.
    environment: "node",
    include: ["tests/**/*.test.ts"],
    server: { deps: { inline: ["convex-test"] } },
    silent: "passed-only",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
