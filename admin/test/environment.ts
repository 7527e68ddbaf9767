/**
 * happy-dom for the components, Node's own networking for the backend under
 * test. The admin component tests run the real pipeline in-process, whose
 * fetch must reach the loopback fakes like in production, but happy-dom
 * replaces fetch, URL, Blob and friends with browser emulations (with CORS).
 * This keeps Node's versions of those globals and happy-dom for everything else.
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

export default {
  name: "happy-dom-node-io",
  // Modules are transformed for Node, so import.meta.url stays a file: URL (scripts/lib/backend.ts needs it).
  viteEnvironment: "ssr",
  async setup(global, options) {
    const kept = NODE_GLOBALS.filter((key) => key in global).map((key) => [key, global[key]] as const);
    const env = await builtinEnvironments["happy-dom"].setup(global, options);
    for (const [key, value] of kept) global[key] = value;
    return env;
  },
} satisfies Environment;
