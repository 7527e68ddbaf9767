/**
 * A fake of TinyPNG's API (the game's compression) for tests and the demo, on
 * 127.0.0.1, speaking its wire format as its public API reference describes it:
 *
 * - `POST /shrink` with HTTP Basic auth `api:<key>` and the image bytes as the
 *   body answers `201 Created`, a `Location` header (the output URL, on the
 *   same host) and JSON `{ input: {size, type}, output: {size, type, width,
 *   height, ratio, url} }`.
 * - `POST <output URL>` with `{"resize": {"method", "width", "height"}}` (or a
 *   plain `GET`) returns the image bytes, with `Image-Width`/`Image-Height`.
 * - Errors are JSON `{ error, message }`: 401 for a missing or wrong key, 415
 *   for a body that is not PNG, JPEG, WebP or AVIF, 400 for an empty body or a
 *   bad resize, 429 for the month's limit (a fault here), 5xx.
 * - Every answer carries `Compression-Count`, the month's compressions.
 *
 * The "compressed" image of a PNG is the same picture, box-sampled to the
 * resized dimensions (fit: scaled down proportionally to fit both bounds,
 * never up) with its colours quantised, so it is smaller and its size is
 * checkable; other types come back as they went in.
 * `setFault()` makes it misbehave the ways a client must survive.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { decodePngRgba, decodePngSize, encodePng } from "./png.ts";

export type TinifyFault =
  /** `/shrink` answers this status with a `{ error, message }` body. */
  | { kind: "status"; status: number; error?: string; message?: string }
  /** The output URL answers this status. */
  | { kind: "outputStatus"; status: number }
  | { kind: "hang" }
  | { kind: "outputHang" }
  /** 201 with a body that is not JSON and no Location. */
  | { kind: "malformedJson" }
  /** 201 whose Location (and output.url) is this URL. */
  | { kind: "foreignLocation"; location: string }
  | { kind: "outputContentType"; contentType: string }
  /** The output body never ends, to see whether the client stops at its cap and closes the connection. */
  | { kind: "outputEndless" }
  /** A 401 whose message echoes the Authorization header it was sent. */
  | { kind: "echoKey" };

type TinifyFaultPicker = (index: number) => TinifyFault | undefined;

interface TinifyRequest {
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Body bytes received (the image for /shrink). */
  bytes: number;
  /** The parsed JSON body of an output request. */
  json?: unknown;
  status?: number;
  /** Set once the connection is closed, from either side. */
  closed?: boolean;
  /** Body bytes written (output requests). */
  bytesSent: number;
}

export interface FakeTinify {
  /** The API base URL (TINIFY_API_URL). */
  url: string;
  apiKey: string;
  requests: TinifyRequest[];
  /** Successful compressions (what the Compression-Count header reports). */
  readonly compressionCount: number;
  setFault(fault: TinifyFault | TinifyFaultPicker | undefined): void;
  close(): Promise<void>;
}

const MAX_INPUT = 32 * 1024 * 1024;
const RESIZE_METHODS = ["fit", "scale", "cover", "thumb"];

function imageType(bytes: Uint8Array): string | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 4) === "PNG") return "image/png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
  if (bytes.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (bytes.length >= 12 && ascii(4, 8) === "ftyp" && ascii(8, 12).startsWith("avi")) return "image/avif";
  return null;
}

/** Scaled down proportionally to fit within width x height; never scaled up. */
export function fitWithin(size: { width: number; height: number }, width: number, height: number) {
  const ratio = Math.min(1, width / size.width, height / size.height);
  return { width: Math.max(1, Math.round(size.width * ratio)), height: Math.max(1, Math.round(size.height * ratio)) };
}

/** The picture at `size` (box-sampled), colours quantised to 16 levels a channel; a flat PNG if it cannot be decoded. */
function compressPng(input: Uint8Array, size: { width: number; height: number }): Uint8Array {
  const source = decodePngRgba(input);
  const out = new Uint8Array(size.width * size.height * 4);
  for (let y = 0; y < size.height; y++) {
    for (let x = 0; x < size.width; x++) {
      const i = (y * size.width + x) * 4;
      if (!source) {
        out.set([24, 20, 22, 255], i);
        continue;
      }
      const [x0, x1] = [
        Math.floor((x * source.width) / size.width),
        Math.max(Math.floor(((x + 1) * source.width) / size.width), Math.floor((x * source.width) / size.width) + 1),
      ];
      const [y0, y1] = [
        Math.floor((y * source.height) / size.height),
        Math.max(Math.floor(((y + 1) * source.height) / size.height), Math.floor((y * source.height) / size.height) + 1),
      ];
      for (let c = 0; c < 4; c++) {
        let sum = 0;
        for (let sy = y0; sy < y1; sy++) for (let sx = x0; sx < x1; sx++) sum += source.rgba[(sy * source.width + sx) * 4 + c]!;
        const mean = sum / ((x1 - x0) * (y1 - y0));
        out[i + c] = c === 3 ? Math.round(mean) : Math.min(255, Math.round(mean / 17) * 17);
      }
    }
  }
  return encodePng(size.width, size.height, out);
}

export type StartTinifyServerOptions = { apiKey?: string; fault?: TinifyFault | TinifyFaultPicker };

export async function startTinifyServer(options: StartTinifyServerOptions = {}): Promise<FakeTinify> {
  const apiKey = options.apiKey ?? "test-tinify-key";
  let fault = options.fault;
  let shrinkCount = 0;
  let compressionCount = 0;
  const requests: TinifyRequest[] = [];
  const outputs = new Map<string, { bytes: Uint8Array; input: Uint8Array; type: string; size: { width: number; height: number } | null }>();
  const sockets = new Set<Socket>();
  const controllers = new Set<AbortController>();
  let origin = "";

  const expected = `Basic ${Buffer.from(`api:${apiKey}`).toString("base64")}`;
  const headers = () => ({ "compression-count": String(compressionCount) });

  function send(
    res: ServerResponse,
    record: TinifyRequest,
    status: number,
    body: string | Uint8Array,
    contentType: string,
    extra: Record<string, string> = {},
  ) {
    const buf = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
    record.status = status;
    record.bytesSent += buf.length;
    res.writeHead(status, { ...headers(), ...extra, "content-type": contentType, "content-length": String(buf.length) });
    res.end(buf);
  }
  const error = (res: ServerResponse, record: TinifyRequest, status: number, error: string, message: string) =>
    send(res, record, status, JSON.stringify({ error, message }), "application/json");

  async function readBody(req: IncomingMessage): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_INPUT) return null;
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  const hang = (signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

  async function handleShrink(req: IncomingMessage, res: ServerResponse, record: TinifyRequest, signal: AbortSignal) {
    const picked = typeof fault === "function" ? fault(shrinkCount) : fault;
    shrinkCount++;
    const body = await readBody(req);
    record.bytes = body?.length ?? MAX_INPUT;
    if (picked?.kind === "echoKey")
      return error(res, record, 401, "Unauthorized", `Credentials are invalid: ${req.headers.authorization ?? "(none)"}`);
    if (req.headers.authorization !== expected) return error(res, record, 401, "Unauthorized", "Credentials are invalid.");
    if (picked?.kind === "hang") return hang(signal);
    if (picked?.kind === "status") {
      return error(res, record, picked.status, picked.error ?? "ServerError", picked.message ?? `The fake answered ${picked.status}.`);
    }
    if (!body) return error(res, record, 413, "Payload too large", "File is too large.");
    if (body.length === 0) return error(res, record, 400, "Input missing", "Input file is empty.");
    const type = imageType(body);
    if (!type) return error(res, record, 415, "Unsupported media type", "File type is not supported.");
    if (picked?.kind === "malformedJson") return send(res, record, 201, "{ not json", "application/json");

    const id = randomUUID().replaceAll("-", "");
    const size = type === "image/png" ? decodePngSize(body) : null;
    const out = size ? compressPng(body, size) : new Uint8Array(body);
    outputs.set(id, { bytes: out, input: new Uint8Array(body), type, size });
    compressionCount++;
    const url = picked?.kind === "foreignLocation" ? picked.location : `${origin}/output/${id}`;
    const json = {
      input: { size: body.length, type },
      output: {
        size: out.length,
        type,
        width: size?.width ?? 0,
        height: size?.height ?? 0,
        ratio: Math.round((out.length / body.length) * 10_000) / 10_000,
        url,
      },
    };
    return send(res, record, 201, JSON.stringify(json), "application/json", { location: url });
  }

  async function handleOutput(req: IncomingMessage, res: ServerResponse, record: TinifyRequest, signal: AbortSignal, id: string) {
    const body = await readBody(req);
    record.bytes = body?.length ?? 0;
    if (req.method === "POST" && req.headers.authorization !== expected)
      return error(res, record, 401, "Unauthorized", "Credentials are invalid.");
    const output = outputs.get(id);
    if (!output) return error(res, record, 404, "Not found", "The output does not exist.");
    let { bytes } = output;
    let size = output.size;
    if (req.method === "POST" && body && body.length > 0) {
      let json: { resize?: { method?: unknown; width?: unknown; height?: unknown } };
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {
        return error(res, record, 400, "Bad request", "The JSON body could not be parsed.");
      }
      record.json = json;
      const resize = json.resize;
      if (resize) {
        const { method, width, height } = resize;
        const dimension = (n: unknown) => n === undefined || (Number.isInteger(n) && (n as number) > 0);
        if (!RESIZE_METHODS.includes(String(method)) || !dimension(width) || !dimension(height)) {
          return error(res, record, 400, "Bad request", "The resize options are invalid.");
        }
        const both = width !== undefined && height !== undefined;
        if (method === "scale" ? both || (width === undefined && height === undefined) : !both) {
          return error(
            res,
            record,
            400,
            "Bad request",
            `Resize method ${String(method)} needs ${method === "scale" ? "exactly one of" : "both"} width and height.`,
          );
        }
        if (size && method === "fit") {
          size = fitWithin(size, width as number, height as number);
          bytes = compressPng(output.input, size);
        }
      }
    }
    const picked = typeof fault === "function" ? fault(shrinkCount - 1) : fault;
    if (picked?.kind === "outputHang") return hang(signal);
    if (picked?.kind === "outputStatus") return error(res, record, picked.status, "ServerError", `The fake answered ${picked.status}.`);
    if (picked?.kind === "outputContentType") return send(res, record, 200, "<html>not an image</html>", picked.contentType);
    if (picked?.kind === "outputEndless") {
      record.status = 200;
      res.writeHead(200, { ...headers(), "content-type": output.type });
      const chunk = Buffer.alloc(64 * 1024);
      while (!signal.aborted) {
        record.bytesSent += chunk.length;
        if (!res.write(chunk)) {
          try {
            await once(res, "drain", { signal });
          } catch {
            return;
          }
        } else await new Promise((resolve) => setImmediate(resolve));
      }
      return;
    }
    const dims: Record<string, string> = size ? { "image-width": String(size.width), "image-height": String(size.height) } : {};
    return send(res, record, 200, bytes, output.type, dims);
  }

  const server = createServer((req, res) => {
    const controller = new AbortController();
    controllers.add(controller);
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const record: TinifyRequest = { at: Date.now(), method: req.method ?? "", path, headers: { ...req.headers }, bytes: 0, bytesSent: 0 };
    requests.push(record);
    res.on("close", () => {
      record.closed = true;
      controller.abort();
      controllers.delete(controller);
    });
    const output = path.match(/^\/output\/([0-9a-f]{32})$/);
    let work: Promise<void> | void;
    if (path === "/shrink" && req.method === "POST") work = handleShrink(req, res, record, controller.signal);
    else if (output && (req.method === "POST" || req.method === "GET"))
      work = handleOutput(req, res, record, controller.signal, output[1]!);
    else work = error(res, record, 404, "Not found", `No route for ${req.method} ${path}.`);
    Promise.resolve(work).catch((err: unknown) => {
      if (!res.headersSent) error(res, record, 500, "InternalServerError", String(err));
      else res.destroy();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: origin,
    apiKey,
    requests,
    get compressionCount() {
      return compressionCount;
    },
    setFault(next) {
      fault = next;
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of controllers) c.abort();
      for (const s of sockets) s.destroy();
      return closed;
    },
  };
}
