/**
 * DEVELOPMENT AND TEST HARNESS, not for production. Serves the admin app
 * (admin/, built with Vite) on 127.0.0.1 and lets it call the demo's embedded
 * backend (convex-test) in this process, the way a browser calls a Convex
 * deployment:
 *
 *   POST /bridge/run        [{kind, name, args}] -> [{value} | {error}]   public functions only
 *   GET  /bridge/changes    server-sent events: one message whenever the backend may have changed
 *   GET  /storage/<sha256>  a stored file (convex-test's storage URLs are rewritten to this)
 *   POST /api/action        Convex's HTTP API for an action (ConvexHttpClient: Convex Auth's token refresh)
 *
 * The page picks who it is with `?as=admin` (default; ADMIN_IDENTITY), `?as=guest`
 * (signed in, not an admin) or `?as=anon`; the identity travels in the
 * `x-bridge-as` header. A console built with `auth: "convex-auth"` (on a stack
 * with `convexAuth: true`) signs in instead: a call with `Authorization: Bearer
 * <JWT>` runs as the token's holder once the token is verified as a deployment
 * would (scripts/lib/convexAuth.ts), and gets 401 when it is not.
 * Anyone who can reach the port can be the admin: it
 * listens on loopback only, and refuses other Host headers (DNS rebinding) and
 * cross-site calls (a JSON body and custom header force a CORS preflight,
 * which it never grants).
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { makeFunctionReference } from "convex/server";
import { ConvexError, convexToJson, jsonToConvex, type JSONValue, type Value } from "convex/values";
import type { BridgeTransport, Call, CallKind, Outcome } from "../../admin/src/bridgeClient.ts";
import { ADMIN_IDENTITY, convexModules, type Backend, type Modules } from "./backend.ts";
import { identityFromToken, TokenRejected } from "./convexAuth.ts";

const ADMIN_DIR = fileURLToPath(new URL("../../admin/", import.meta.url));

const GUEST_IDENTITY = { email: "guest@demo.local", emailVerified: true, subject: "demo-guest", name: "Demo Guest" };
const IDENTITIES: Record<string, typeof ADMIN_IDENTITY | undefined> = { admin: ADMIN_IDENTITY, guest: GUEST_IDENTITY, anon: undefined };

/** Who a call runs as: a verified token's identity, a demo identity, or nobody. */
type CallerIdentity = Parameters<Backend["withIdentity"]>[0] | undefined;

/** The demo identity `?as=` names (admin, guest or anon; anything else is anon). */
const bridgeIdentity = (as: string): CallerIdentity => (Object.hasOwn(IDENTITIES, as) ? IDENTITIES[as] : undefined);

// convex-test's ctx.storage.getUrl answers with this prefix and the file's sha256.
const TEST_STORAGE_URL = "https://some-deployment.convex.cloud/api/storage/";

/** Whether `name` ("module:export") is a public function of that kind among `modules`, as a deployment would check. */
function publicFunctions(modules: Record<string, () => Promise<unknown>>) {
  let registry: Promise<Map<string, Record<string, unknown>>> | undefined;
  return async (name: string, kind: CallKind): Promise<boolean> => {
    registry ??= (async () => {
      const loaded = await Promise.all(
        Object.entries(modules).map(async ([file, load]) => [file, (await load()) as Record<string, unknown>] as const),
      );
      return new Map(loaded.map(([file, mod]) => [file.replace(/^.*convex\//, "").replace(/\.(ts|js)$/, ""), mod]));
    })();
    const [path, exportName = "default"] = name.split(":");
    const fn = (await registry).get(path!)?.[exportName] as Record<string, boolean> | undefined;
    const flag = { query: "isQuery", mutation: "isMutation", action: "isAction" }[kind];
    return !!fn && fn.isPublic === true && fn[flag] === true;
  };
}

function encodeError(error: unknown): Outcome {
  const e = error as { name?: string; message?: string; data?: Value } | undefined;
  if (e && e.data !== undefined && (error instanceof ConvexError || e.name === "ConvexError")) {
    return { error: { message: e.message ?? "ConvexError", data: convexToJson(e.data) } };
  }
  return { error: { message: e?.message ?? String(error) } };
}

/** Points storage URLs at this server's /storage/ route. */
function rewriteStorageUrls(value: JSONValue): JSONValue {
  if (typeof value === "string") {
    return value.startsWith(TEST_STORAGE_URL) ? `/storage/${encodeURIComponent(value.slice(TEST_STORAGE_URL.length))}` : value;
  }
  if (Array.isArray(value)) return value.map(rewriteStorageUrls);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteStorageUrls(v)]));
  return value;
}

/** Runs one public function call of `modules` (default: convex/) on the embedded backend as `identity`. */
function bridgeExecutor(t: Backend, modules = convexModules()) {
  const isPublic = publicFunctions(modules);
  return async (identity: CallerIdentity, call: Call): Promise<Outcome> => {
    try {
      if (!(await isPublic(call.name, call.kind))) throw new Error(`bridge: ${call.name} is not a public ${call.kind}`);
      const caller = identity ? t.withIdentity(identity) : t;
      const args = jsonToConvex(call.args) as Record<string, Value>;
      const value =
        call.kind === "query"
          ? await caller.query(makeFunctionReference<"query">(call.name), args)
          : call.kind === "mutation"
            ? await caller.mutation(makeFunctionReference<"mutation">(call.name), args)
            : await caller.action(makeFunctionReference<"action">(call.name), args);
      return { value: rewriteStorageUrls(convexToJson(value as Value)) };
    } catch (error) {
      return encodeError(error);
    }
  };
}

/**
 * Calls `onChange` when the backend has changed. convex-test has no change
 * feed, so this polls a cheap fingerprint: every job transition appends an
 * event, and scheduled functions starting or finishing change their states.
 */
function watchChanges(t: Backend, onChange: () => void, { pollMs = 150 } = {}): () => void {
  let last = "";
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const fingerprint = await t.run(async (ctx) => {
        const lastEvent = await ctx.db.query("portraitJobEvents").order("desc").first();
        const scheduled = await ctx.db.system.query("_scheduled_functions").collect();
        const stories = await ctx.db.query("stories").collect();
        const states = scheduled.map((fn) => fn.state.kind[0]).join("");
        return `${lastEvent?._id}|${stories.length}|${scheduled.length}|${states}`;
      });
      if (fingerprint !== last) {
        last = fingerprint;
        onChange();
      }
    } catch (error) {
      console.warn("bridge: change poll failed:", error);
    }
    if (!stopped) timer = setTimeout(poll, pollMs);
  };
  void poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * The bridge without HTTP: the admin app's client talking to the backend in this process (component
 * tests). `modules`: the Convex modules `t` runs (default: convex/ as it is).
 */
export function localTransport(t: Backend, as: string, options?: { pollMs?: number; modules?: Modules }): BridgeTransport {
  const execute = bridgeExecutor(t, options?.modules);
  return {
    run: (calls) => Promise.all(calls.map((call) => execute(bridgeIdentity(as), call))),
    subscribe: (onChange, onLink) => {
      onLink?.({ connected: true });
      return watchChanges(t, onChange, options);
    },
  };
}

/** How the console signs in: not at all (the demo's `?as=`), or through Convex Auth's Password provider. */
export type AdminAuth = "none" | "convex-auth";

/**
 * Builds the admin app in bridge mode into a fresh directory. VITE_AUTH is
 * fixed by `auth`, whatever .env.local says for the deployment build.
 */
export async function buildAdmin(outDir?: string, auth: AdminAuth = "none"): Promise<string> {
  const { build } = await import("vite");
  const dir = outDir ?? (await mkdtemp(join(tmpdir(), "admin-bridge-")));
  await build({
    configFile: join(ADMIN_DIR, "vite.config.ts"),
    mode: "bridge",
    logLevel: "warn",
    define: { "import.meta.env.VITE_AUTH": JSON.stringify(auth === "none" ? "" : auth) },
    build: { outDir: dir, emptyOutDir: true },
  });
  return dir;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
};

export interface ServeAdminOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Serve this existing bridge-mode build instead of building one (see buildAdmin). */
  dist?: string;
  /** How the console built here signs in (default "none"; "convex-auth" needs a `convexAuth` stack). */
  auth?: AdminAuth;
  /** How often to look for backend changes. */
  pollMs?: number;
}

export interface AdminServer {
  /** e.g. http://127.0.0.1:5178 (add ?as=guest or ?as=anon to be someone else). */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the admin app against `stack`'s embedded backend. When neither
 * ADMIN_EMAILS nor ADMIN_SUBJECTS is set, sets ADMIN_EMAILS to the demo
 * admin's email until close().
 */
export async function serveAdmin(
  stack: { t: Backend; modules?: Record<string, () => Promise<unknown>> },
  options: ServeAdminOptions = {},
): Promise<AdminServer> {
  const ownDist = !options.dist;
  const dist = resolve(options.dist ?? (await buildAdmin(undefined, options.auth)));
  const execute = bridgeExecutor(stack.t, stack.modules);
  const setAdmins = !process.env.ADMIN_EMAILS?.trim() && !process.env.ADMIN_SUBJECTS?.trim();
  if (setAdmins) process.env.ADMIN_EMAILS = ADMIN_IDENTITY.email;

  const listeners = new Set<ServerResponse>();
  let stopWatching: (() => void) | undefined;
  let version = 0;
  const broadcast = () => {
    version++;
    for (const res of listeners) res.write(`data: ${version}\n\n`);
  };

  let allowedHosts = new Set<string>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (error instanceof TokenRejected && !res.headersSent) send(res, 401, "text/plain; charset=utf-8", `bridge: ${error.message}`);
      else if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `bridge error: ${(error as Error).message}`);
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (!allowedHosts.has(req.headers.host ?? "")) return send(res, 403, "text/plain; charset=utf-8", "bridge: unexpected Host header");
    const url = new URL(req.url ?? "/", "http://bridge.invalid");

    if (url.pathname === "/bridge/run") {
      if (req.method !== "POST" || !req.headers["content-type"]?.startsWith("application/json")) {
        return send(res, 405, "text/plain; charset=utf-8", "bridge: POST a JSON array of calls");
      }
      const calls = JSON.parse(await readBody(req)) as Call[];
      if (!Array.isArray(calls)) return send(res, 400, "text/plain; charset=utf-8", "bridge: expected an array of calls");
      const token = bearer(req);
      const identity = token !== undefined ? identityFromToken(token) : bridgeIdentity(String(req.headers["x-bridge-as"] ?? "admin"));
      const outcomes = await Promise.all(calls.map((call) => execute(identity, call)));
      if (calls.some((call) => call.kind !== "query")) broadcast(); // other tabs look again at once
      return send(res, 200, "application/json", JSON.stringify(outcomes));
    }

    // ConvexHttpClient's action call; never a demo identity.
    if (url.pathname === "/api/action" && req.method === "POST") {
      const { path, args } = JSON.parse(await readBody(req)) as { path: string; args: JSONValue[] };
      const token = bearer(req);
      const outcome = await execute(token !== undefined ? identityFromToken(token) : undefined, {
        kind: "action",
        name: path,
        args: args?.[0] ?? {},
      });
      if ("value" in outcome)
        return send(res, 200, "application/json", JSON.stringify({ status: "success", value: outcome.value, logLines: [] }));
      // 560: the status Convex answers a function that threw.
      const { message, data } = outcome.error;
      return send(res, 560, "application/json", JSON.stringify({ status: "error", errorMessage: message, errorData: data, logLines: [] }));
    }

    if (url.pathname === "/bridge/changes" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(`data: ${version}\n\n`);
      listeners.add(res);
      stopWatching ??= watchChanges(stack.t, broadcast, { pollMs: options.pollMs });
      req.on("close", () => {
        listeners.delete(res);
        if (listeners.size === 0) {
          stopWatching?.();
          stopWatching = undefined;
        }
      });
      return;
    }

    if (url.pathname.startsWith("/storage/") && req.method === "GET") {
      const sha256 = decodeURIComponent(url.pathname.slice("/storage/".length));
      const file = await stack.t.run(async (ctx) => {
        const meta = (await ctx.db.system.query("_storage").collect()).find((f) => f.sha256 === sha256);
        const blob = meta && (await ctx.storage.get(meta._id));
        return blob ? { bytes: await blob.arrayBuffer(), contentType: meta.contentType ?? "application/octet-stream" } : null;
      });
      if (!file) return send(res, 404, "text/plain; charset=utf-8", "no such file");
      return send(res, 200, file.contentType, Buffer.from(file.bytes), "private, max-age=3600");
    }

    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "method not allowed");
    const path = resolve(dist, `.${url.pathname === "/" ? "/index.html" : decodeURIComponent(url.pathname)}`);
    if (!path.startsWith(dist + sep) || !(await stat(path).catch(() => null))?.isFile()) {
      return send(res, 404, "text/plain; charset=utf-8", "not found");
    }
    return send(res, 200, TYPES[extname(path)] ?? "application/octet-stream", await readFile(path), "no-cache");
  }

  server.listen(options.port ?? 0, "127.0.0.1");
  await new Promise<void>((ok, fail) => {
    server.once("listening", ok);
    server.once("error", fail);
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      stopWatching?.();
      for (const res of listeners) res.end();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      if (setAdmins) delete process.env.ADMIN_EMAILS;
      if (ownDist) await rm(dist, { recursive: true, force: true });
    },
  };
}

/** The token of an `Authorization: Bearer …` header. */
function bearer(req: IncomingMessage): string | undefined {
  const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
  return match?.[1];
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, cache = "no-store") {
  res.writeHead(status, { "content-type": type, "cache-control": cache, "x-content-type-options": "nosniff" });
  res.end(body);
}

const MAX_BODY_BYTES = 1 << 20;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
