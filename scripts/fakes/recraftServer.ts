import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { overLimit, windowCounts } from "../lib/stats.ts";
import { portraitPng } from "./png.ts";

/** Faults of the generation call itself. */
type GenerationFault =
  | { kind: "status"; status: number; body?: string; json?: unknown; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "malformedJson" }
  | { kind: "emptyData" }
  | { kind: "noUrl" }
  | { kind: "imageUrl"; url: string }
  | { kind: "echoKey" }
  /** Echoes the bare token it was sent (no "Bearer", no known key shape) in a JSON error. */
  | { kind: "echoBareKey" }
  | { kind: "reset" };

/** Faults of the image download: the generation answers 200 normally, its image URL misbehaves. */
/** `endless: true` answers with a body that never ends, to see whether the client closes the connection. */
type ImageFault =
  | { kind: "imageStatus"; status: number; body?: string; endless?: boolean }
  | { kind: "imageHang" }
  | { kind: "imageSlowDrip"; chunkBytes?: number; intervalMs?: number }
  | { kind: "imageReset" }
  | { kind: "imageTruncated" }
  /** contentType null: no content-type header at all. */
  | { kind: "imageContentType"; contentType: string | null; body?: string; endless?: boolean }
  | { kind: "imageOversize"; bytes: number; withContentLength: boolean }
  | { kind: "imageEndless" }
  /** `location` may contain `{origin}` and `{id}`; `{origin}/raw/{id}.png` serves the real image. */
  | { kind: "imageRedirect"; location: string; endless?: boolean };

export type Fault = GenerationFault | ImageFault;
export type FaultPicker = (req: { prompt: string; index: number }) => Fault | undefined;

interface RecordedRequest {
  /** 0-based count of generation requests seen (the index given to a FaultPicker). */
  index: number;
  at: number;
  requestId: string;
  /** Lower-cased by node:http; includes `authorization`. */
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or the raw string when it is not JSON. */
  body: unknown;
  prompt: string | undefined;
  /** Empty when the body passed schema validation. */
  validationErrors: string[];
  fault: Fault["kind"] | undefined;
  /** Set once the response has been sent (undefined for hang/reset). */
  status?: number;
  imageIds: string[];
}

export interface ImageRequest {
  at: number;
  path: string;
  imageId?: string;
  fault?: ImageFault["kind"];
  /** Body bytes written to the socket. */
  bytesSent: number;
  /** Set when the response's connection closed. */
  closed: boolean;
  /** The client closed the connection before the response was complete. */
  closedEarly: boolean;
}

interface TimelineEntry {
  index: number;
  requestId: string;
  start: number;
  /** When the response finished or the connection closed. */
  end?: number;
}

export interface RecraftServerOptions {
  port?: number;
  apiKey?: string;
  credits?: number;
  latencyMs?: number | ((prompt: string) => number);
  downloadLatencyMs?: number;
  paint?: (prompt: string) => Uint8Array;
  fault?: Fault | FaultPicker;
}

export interface FakeRecraft {
  /** API base, e.g. http://127.0.0.1:1234/v1 */
  readonly url: string;
  readonly origin: string;
  readonly imageHost: string;
  readonly port: number;
  readonly apiKey: string;
  readonly requests: RecordedRequest[];
  readonly imageRequests: ImageRequest[];
  readonly timeline: TimelineEntry[];
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** When each generation request arrived, in order (what Recraft's rate limits count). */
  readonly starts: number[];
  /** The most generation requests that arrived within any window of `windowMs` (half-open). */
  maxStartsInWindow(windowMs: number): number;
  /** How many requests arrived while `limit` others had already arrived in the `windowMs` before them. */
  startsOverLimit(windowMs: number, limit: number): number;
  /** Bytes written by imageOversize/imageEndless responses since the last reset(). */
  readonly oversizeBytesSent: number;
  setFault(fault: Fault | FaultPicker | undefined): void;
  /** URL of a generated image (with its fault) and of its fault-free twin. */
  imageUrl(id: string): string;
  rawImageUrl(id: string): string;
  reset(): void;
  close(): Promise<void>;
}

interface Validator {
  validate: ValidateFunction;
}

const validators = new Map<string, Validator>();

function loadValidator(): Validator {
  const path = process.env.RECRAFT_OPENAPI_PATH ?? fileURLToPath(new URL("../../reference/recraft-openapi.json", import.meta.url));
  const cached = validators.get(path);
  if (cached) return cached;

  type Schema = { $ref?: string; allOf?: Schema[]; properties?: Record<string, unknown> };
  const schemas: Record<string, Schema> = JSON.parse(readFileSync(path, "utf8")).components.schemas;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("uint32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat("binary", true);
  ajv.addSchema({ $id: "recraft", components: { schemas } });

  // The spec allows unknown properties; we do not, so a misspelt field in the pipeline fails loudly.
  const propertyNames = (s: Schema): string[] => {
    const ref = s.$ref?.match(/^#\/components\/schemas\/(.+)$/)?.[1];
    return [...(ref ? propertyNames(schemas[ref]!) : []), ...(s.allOf ?? []).flatMap(propertyNames), ...Object.keys(s.properties ?? {})];
  };
  const allowed = propertyNames(schemas.GenerateImageJSONRequest!);
  const validate = ajv.compile({
    allOf: [{ $ref: "recraft#/components/schemas/GenerateImageJSONRequest" }],
    type: "object",
    properties: Object.fromEntries(allowed.map((k) => [k, true])),
    additionalProperties: false,
  });
  const v = { validate };
  validators.set(path, v);
  return v;
}

const V3_SIZES =
  "1024x1024 1365x1024 1024x1365 1536x1024 1024x1536 1820x1024 1024x1820 1024x2048 2048x1024 1434x1024 1024x1434 1024x1280 1280x1024 1024x1707 1707x1024";
const V4_SIZES =
  "1024x1024 1536x768 768x1536 1280x832 832x1280 1216x896 896x1216 1152x896 896x1152 832x1344 1280x896 896x1280 1344x768 768x1344";
const V4_PRO_SIZES =
  "2048x2048 3072x1536 1536x3072 2560x1664 1664x2560 2432x1792 1792x2432 2304x1792 1792x2304 1664x2688 2560x1792 1792x2560 2688x1536 1536x2688";
const ASPECTS = "1:1 2:1 1:2 3:2 2:3 4:3 3:4 5:4 4:5 6:10 14:10 10:14 16:9 9:16";
/** V4 and V4.1 take style only as style_id (or references): these V2/V3 parameters are refused. */
const NOT_FOR_V4 = ["style", "substyle", "negative_prompt", "text_layout"];

/**
 * What each model accepts beyond the shared OpenAPI schema, written from
 * Recraft's API reference (appendix: prompt lengths, sizes per model; model
 * pages: V4 parameters), independently of the pipeline's own model table.
 */
function modelProblems(fields: Record<string, unknown>): string[] {
  const model = (typeof fields.model === "string" ? fields.model : "recraftv4_1").replace(/_raster$/, ""); // Recraft's default model
  const v4 = model.startsWith("recraftv4");
  const problems: string[] = [];
  const prompt = typeof fields.prompt === "string" ? fields.prompt : "";
  const [length, max, unit] = v4 ? [[...prompt].length, 10_000, "characters"] : [Buffer.byteLength(prompt), 1000, "bytes"];
  if (length > max) problems.push(`prompt is ${length} ${unit}; ${model} accepts at most ${max}`);
  if (v4) for (const name of NOT_FOR_V4) if (name in fields) problems.push(`body '${name}' is not accepted by ${model}`);
  const sizes = `${v4 ? (model.includes("pro") ? V4_PRO_SIZES : V4_SIZES) : V3_SIZES} ${ASPECTS}`.split(" ");
  if (typeof fields.size === "string" && !sizes.includes(fields.size)) problems.push(`size ${fields.size} is not supported by ${model}`);
  if (model.startsWith("recraftv4_styles") && !("style_id" in fields) && !("style_reference_urls" in fields)) {
    problems.push(`${model} requires style_id or style_reference_urls`);
  }
  return problems;
}

function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || "body";
    const extra = e.params.additionalProperty !== undefined ? ` '${e.params.additionalProperty}'` : "";
    return `${where} ${e.message ?? "is invalid"}${extra}`;
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    if (ms <= 0) return resolve(true);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function send(res: ServerResponse, status: number, body: string | Uint8Array, contentType: string, headers: Record<string, string> = {}) {
  const buf = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, "content-type": contentType, "content-length": String(buf.length) });
  res.end(buf);
}

const sendJson = (res: ServerResponse, status: number, value: unknown, headers?: Record<string, string>) =>
  send(res, status, JSON.stringify(value), "application/json", headers);

const MAX_BODY = 1 << 20;

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) return null;
      chunks.push(c);
    }
  } catch {
    return null;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Writes `total` bytes (Infinity = until the client leaves) honouring backpressure; stops as soon as the client goes away. */
async function stream(res: ServerResponse, total: number, head: Uint8Array, signal: AbortSignal, count: (n: number) => void) {
  const CHUNK = 64 * 1024;
  const filler = Buffer.alloc(CHUNK);
  let sent = 0;
  while (sent < total && !signal.aborted) {
    const n = Math.min(CHUNK, total - sent);
    const buf = sent === 0 ? Buffer.concat([head, filler]).subarray(0, n) : filler.subarray(0, n);
    const ok = res.write(buf);
    sent += n;
    count(n);
    try {
      if (!ok) await once(res, "drain", { signal });
      else await new Promise((r) => setImmediate(r));
    } catch {
      return;
    }
  }
  if (!signal.aborted) res.end();
}

export async function startRecraftServer(options: RecraftServerOptions = {}): Promise<FakeRecraft> {
  const apiKey = options.apiKey ?? "test-recraft-key";
  const paint = options.paint ?? ((prompt: string) => portraitPng(prompt));
  const { validate } = loadValidator();

  let fault: Fault | FaultPicker | undefined = options.fault;
  let generationCount = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let oversizeBytesSent = 0;
  const requests: RecordedRequest[] = [];
  const imageRequests: ImageRequest[] = [];
  const timeline: TimelineEntry[] = [];
  const images = new Map<string, { prompt: string; fault?: ImageFault }>();
  const sockets = new Set<Socket>();
  const controllers = new Set<AbortController>();
  let origin = "";

  const latencyFor = (prompt: string) => (typeof options.latencyMs === "function" ? options.latencyMs(prompt) : (options.latencyMs ?? 0));

  async function handleGeneration(req: IncomingMessage, res: ServerResponse, signal: AbortSignal) {
    const requestId = randomUUID();
    const record: RecordedRequest = {
      index: generationCount++,
      at: Date.now(),
      requestId,
      headers: { ...req.headers },
      body: undefined,
      prompt: undefined,
      validationErrors: [],
      fault: undefined,
      imageIds: [],
    };
    const span: TimelineEntry = { index: record.index, requestId, start: record.at };
    requests.push(record);
    timeline.push(span);
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.on("close", () => {
      inFlight--;
      span.end = Date.now();
      if (res.headersSent) record.status = res.statusCode;
    });
    res.setHeader("x-recraft-requestid", requestId);

    const raw = await readBody(req);
    if (raw === null) {
      if (!signal.aborted) sendJson(res, 413, { code: "invalid_request", message: "request body too large or aborted" });
      return;
    }
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // keep the raw string
    }
    record.body = body;
    const fields = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
    const prompt = typeof fields.prompt === "string" ? fields.prompt : undefined;
    record.prompt = prompt;

    if (!(await sleep(latencyFor(prompt ?? ""), signal))) return;

    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return sendJson(res, 401, { code: "not_authorized", message: "invalid or missing API token" });
    }
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (contentType !== "application/json") {
      record.validationErrors = [`content-type must be application/json, got '${contentType}'`];
    } else if (typeof body === "string") {
      record.validationErrors = ["body is not valid JSON"];
    } else if (!validate(body)) {
      record.validationErrors = describeErrors(validate.errors);
    } else {
      record.validationErrors = modelProblems(fields);
    }
    if (record.validationErrors.length > 0) {
      return sendJson(res, 400, { code: "invalid_request", message: record.validationErrors.join("; ") });
    }

    const f = typeof fault === "function" ? fault({ prompt: prompt ?? "", index: record.index }) : fault;
    record.fault = f?.kind;
    const created = Math.floor(Date.now() / 1000);
    const credits = options.credits ?? 1;
    switch (f?.kind) {
      case "status": {
        const headers = f.headers ?? {};
        if (f.json !== undefined) return sendJson(res, f.status, f.json, headers);
        return send(res, f.status, f.body ?? `error ${f.status}`, "text/plain; charset=utf-8", headers);
      }
      case "hang":
        return; // the socket stays open until the client aborts or close() destroys it
      case "reset":
        req.socket.resetAndDestroy();
        return;
      case "malformedJson":
        return send(res, 200, '{"data": [', "application/json");
      case "emptyData":
        return sendJson(res, 200, { created, credits, data: [] });
      case "noUrl":
        return sendJson(res, 200, { created, credits, data: [{ image_id: randomUUID() }] });
      case "imageUrl":
        return sendJson(res, 200, { created, credits, data: [{ image_id: randomUUID(), url: f.url }] });
      case "echoKey":
        return send(res, 401, `unauthorized: rejected header "Authorization: ${req.headers.authorization ?? ""}"`, "text/plain");
      case "echoBareKey": {
        const token = (req.headers.authorization ?? "").replace(/^Bearer\s+/i, "");
        return sendJson(res, 400, { code: "invalid_request", message: `token ${token} may not use style ${String(fields.style)}` });
      }
    }

    const n = Math.min(Math.max(typeof fields.n === "number" ? fields.n : 1, 1), 4);
    const data = Array.from({ length: n }, () => {
      const id = randomUUID();
      images.set(id, { prompt: prompt ?? "", fault: f });
      record.imageIds.push(id);
      return fields.response_format === "b64_json"
        ? { image_id: id, b64_json: Buffer.from(paint(prompt ?? "")).toString("base64") }
        : { image_id: id, url: imageUrl(id) };
    });
    sendJson(res, 200, { created, credits, data });
  }

  async function handleImage(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, id: string, raw: boolean) {
    const image = images.get(id);
    const f = raw ? undefined : image?.fault;
    const record: ImageRequest = {
      at: Date.now(),
      path: req.url ?? "",
      imageId: id,
      fault: f?.kind,
      bytesSent: 0,
      closed: false,
      closedEarly: false,
    };
    imageRequests.push(record);
    res.on("close", () => {
      record.closed = true;
      record.closedEarly = !res.writableEnded;
    });
    if (!image) return sendJson(res, 404, { code: "not_found", message: "no such image" });
    if (!(await sleep(options.downloadLatencyMs ?? 0, signal))) return;

    const png = paint(image.prompt);
    const countBytes = (n: number) => (record.bytesSent += n);
    const countOversize = (n: number) => (countBytes(n), (oversizeBytesSent += n));
    const endless = (status: number, headers: Record<string, string>) => {
      res.writeHead(status, headers);
      return stream(res, Infinity, new Uint8Array(0), signal, countBytes);
    };
    switch (f?.kind) {
      case undefined:
        countBytes(png.length);
        return send(res, 200, png, "image/png");
      case "imageStatus":
        if (f.endless) return endless(f.status, { "content-type": "text/plain" });
        return send(res, f.status, f.body ?? `error ${f.status}`, "text/plain");
      case "imageHang":
        return;
      case "imageSlowDrip": {
        const step = f.chunkBytes ?? 16;
        res.writeHead(200, { "content-type": "image/png", "content-length": String(png.length) });
        for (let i = 0; i < png.length; i += step) {
          if (i > 0 && !(await sleep(f.intervalMs ?? 200, signal))) return;
          res.write(png.subarray(i, i + step));
        }
        return void res.end();
      }
      case "imageReset":
      case "imageTruncated": {
        res.writeHead(200, { "content-type": "image/png", "content-length": String(png.length) });
        res.write(png.subarray(0, Math.floor(png.length / 2)));
        // Give the client time to see the headers and the partial body, so the failure lands mid-body.
        if (!(await sleep(30, signal))) return;
        if (f.kind === "imageReset") req.socket.resetAndDestroy();
        else req.socket.end();
        return;
      }
      case "imageContentType": {
        const typeHeader: Record<string, string> = f.contentType === null ? {} : { "content-type": f.contentType };
        if (f.endless) return endless(200, typeHeader);
        const body =
          f.body ?? (f.contentType?.startsWith("image/") ? png : "<!doctype html><html><body><h1>Not an image</h1></body></html>");
        const buf = typeof body === "string" ? Buffer.from(body) : body;
        res.writeHead(200, { ...typeHeader, "content-length": String(buf.length) });
        return void res.end(buf);
      }
      case "imageOversize":
        res.writeHead(200, { "content-type": "image/png", ...(f.withContentLength ? { "content-length": String(f.bytes) } : {}) });
        return stream(res, f.bytes, png, signal, countOversize);
      case "imageEndless":
        res.writeHead(200, { "content-type": "image/png" });
        return stream(res, Infinity, png, signal, countOversize);
      case "imageRedirect": {
        const location = f.location.replaceAll("{origin}", origin).replaceAll("{id}", id);
        if (f.endless) return endless(302, { location, "content-type": "text/html" });
        res.writeHead(302, { location, "content-length": "0" });
        return void res.end();
      }
      default:
        // A generation-side fault never reaches here: those return before images are stored.
        return send(res, 200, png, "image/png");
    }
  }

  const server = createServer((req, res) => {
    const controller = new AbortController();
    controllers.add(controller);
    res.on("close", () => {
      controller.abort();
      controllers.delete(controller);
    });
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const image = path.match(/^\/(images|raw)\/([0-9a-f-]{36})\.png$/);
    let work: Promise<void> | void;
    if (path === "/v1/images/generations") {
      work =
        req.method === "POST"
          ? handleGeneration(req, res, controller.signal)
          : sendJson(res, 405, { code: "method_not_allowed", message: "use POST" });
    } else if (image && (req.method === "GET" || req.method === "HEAD")) {
      work = handleImage(req, res, controller.signal, image[2]!, image[1] === "raw");
    } else {
      work = sendJson(res, 404, { code: "not_found", message: `no route for ${req.method} ${path}` });
    }
    Promise.resolve(work).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { code: "internal", message: String(err) });
      else res.destroy();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  const imageUrl = (id: string) => `${origin}/images/${id}.png`;

  return {
    url: `${origin}/v1`,
    origin,
    imageHost: "127.0.0.1",
    port,
    apiKey,
    requests,
    imageRequests,
    timeline,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get starts() {
      return requests.map((r) => r.at);
    },
    maxStartsInWindow(windowMs) {
      return windowCounts(
        requests.map((r) => r.at),
        windowMs,
      ).reduce((a, b) => Math.max(a, b), 0);
    },
    startsOverLimit(windowMs, limit) {
      return overLimit(
        requests.map((r) => r.at),
        windowMs,
        limit,
      );
    },
    get oversizeBytesSent() {
      return oversizeBytesSent;
    },
    setFault(f) {
      fault = f;
    },
    imageUrl,
    rawImageUrl: (id) => `${origin}/raw/${id}.png`,
    reset() {
      requests.length = 0;
      imageRequests.length = 0;
      timeline.length = 0;
      generationCount = 0;
      maxInFlight = inFlight;
      oversizeBytesSent = 0;
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of controllers) c.abort();
      for (const s of sockets) s.destroy();
      return closed;
    },
  };
}
