/**
 * `npx tsx scripts/serve-admin.ts [--port N] [--stories N] [--fail-rate R]`: the admin
 * console on the embedded demo backend (a local development harness: see
 * scripts/lib/bridge.ts), with fake Claude and Recraft. Ctrl-C stops it.
 */
import { parseArgs } from "node:util";
import { ADMIN_IDENTITY } from "./lib/backend.ts";
import { serveAdmin } from "./lib/bridge.ts";
import { generateStories, startDemoStack } from "./lib/stack.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "5178" },
    stories: { type: "string", default: "0" },
    "fail-rate": { type: "string", default: "0" },
  },
});
const stack = await startDemoStack({
  failRate: Number(values["fail-rate"]),
  env: { ADMIN_EMAILS: ADMIN_IDENTITY.email, PORTRAIT_MAX_ATTEMPTS: "3", PORTRAIT_RETRY_INITIAL_MS: "500" },
  backendLog: () => {},
});
const server = await serveAdmin(stack, { port: Number(values.port) });
// backendLog captures the global console, so write to stdout directly.
const say = (line: string) => process.stdout.write(`${line}\n`);
say(`Admin console (local bridge, embedded backend): ${server.url}/  ·  ${server.url}/?as=guest  ·  ${server.url}/?as=anon`);
const stories = Number(values.stories);
if (stories > 0) {
  const { progress } = await generateStories(stack, stories);
  say(`Generated ${progress.written} case files: ${JSON.stringify(progress.counts)}`);
}
process.once("SIGINT", () => {
  void Promise.all([server.close(), stack.close()]).then(() => process.exit(0));
});
