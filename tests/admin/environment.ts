/**
 * The `admin` project's environment: happy-dom for the components, Node's own
 * networking for the backend under test. The backend's own suites run in the
 * `backend` project under plain Node; the admin component tests run it in the
 * same process as the components on purpose, because each test drives it
 * directly (convex-test's `t`, the fakes' fault pickers: functions, which no
 * process boundary carries). Its pipeline's fetch must reach the loopback fakes
 * as in production, but happy-dom replaces fetch, URL, Blob and friends with
 * browser emulations (with CORS). This keeps Node's versions of those globals
 * and happy-dom for everything else, and shows the Anthropic SDK no `navigator`
 * (below), so production code needs no browser flag.
 */
import { builtinEnvironments, type Environment } from "vitest/runtime";

const NODE_GLOBALS = [
  "fetch",
  "Request",
  "Response",
  "Headers",
  "FormData",
  "AbortController",
  "AbortSignal",
  "URL",
  "URLSearchParams",
  "Blob",
  "File",
  "TextEncoder",
  "TextDecoder",
  "ReadableStream",
  "WritableStream",
  "TransformStream",
  "structuredClone",
];

/** Whether the Anthropic SDK's code is on the stack (raw frames: formatting a stack is slow under vitest's source maps). */
function calledFromAnthropicSdk(): boolean {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, frames) => frames;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder);
  const frames = holder.stack ?? [];
  Error.prepareStackTrace = prepare;
  return frames.some((frame) => frame.getFileName()?.includes("@anthropic-ai/sdk"));
}

export default {
  name: "happy-dom-node-io",
  // Modules are transformed for Node, so import.meta.url stays a file: URL (scripts/lib/backend.ts needs it).
  viteEnvironment: "ssr",
  async setup(global, options) {
    const kept = NODE_GLOBALS.filter((key) => key in global).map((key) => [key, global[key]] as const);
    const env = await builtinEnvironments["happy-dom"].setup(global, options);
    for (const [key, value] of kept) global[key] = value;
    // The backend under test is server code: the Anthropic SDK in its story runs must see Node, as in
    // a Convex action, not a browser (it refuses to run there). The SDK decides by looking for a
    // `navigator` global: the SDK's own code is told there is none; the components keep happy-dom's.
    const navigator = global.navigator;
    Object.defineProperty(global, "navigator", {
      configurable: true,
      get: () => (calledFromAnthropicSdk() ? undefined : navigator),
    });
    return env;
  },
} satisfies Environment;
