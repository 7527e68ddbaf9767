/**
 * Recraft's wire protocol, as the pipeline's action speaks it: one generation
 * request and one guarded image download. Expected failures come back as a
 * JobError with a stable code, never as an exception.
 */
import type { JobError, PipelineStep, StepDetails } from "../validators";
import type { RecraftConfig } from "./config";
import type { ResolvedRecraftRequest } from "./recraftModels";
import { describeError, redact } from "./redact";
import { Sha256 } from "./sha256";

export type StepResult<T> = { ok: true; value: T; details: StepDetails } | { ok: false; error: JobError; details: StepDetails };

const MAX_RESPONSE_BYTES = 1024 * 1024; // a generation answer is a few hundred bytes
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * An abort signal that fires after `ms`, from AbortController and setTimeout
 * (which every Convex runtime has), cleared once the step is over.
 */
export function deadline(ms: number) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("deadline exceeded", "TimeoutError")), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/**
 * One request's own signal: it follows the step's deadline, and `stop()`
 * aborts it. Every exit calls `stop()`: in Convex's runtime a fetched body keeps
 * downloading after `reader.cancel()` unless the request's signal is aborted
 * (after a body read to its end, aborting changes nothing).
 */
export function requestSignal(step: AbortSignal) {
  const controller = new AbortController();
  const follow = () => controller.abort(step.reason);
  if (step.aborted) follow();
  else step.addEventListener("abort", follow);
  return {
    signal: controller.signal,
    stop() {
      step.removeEventListener("abort", follow);
      if (!controller.signal.aborted) controller.abort(new DOMException("stopped reading", "AbortError"));
    },
  };
}

function failure(step: PipelineStep, code: JobError["code"], message: string, details: StepDetails, extra: Partial<JobError> = {}) {
  return { ok: false as const, error: { step, code, message: redact(message), ...extra }, details };
}

function thrownFailure(step: PipelineStep, error: unknown, details: StepDetails) {
  const name = error instanceof Error ? error.name : "";
  if (name === "TimeoutError" || name === "AbortError") {
    return failure(step, "timeout", `${step} timed out`, details);
  }
  return failure(step, "network_error", describeError(error), details);
}

/** Retry-After is either delay-seconds or an HTTP date. */
function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Error bodies are sometimes plain text, sometimes JSON with a message somewhere. */
function errorBodyMessage(body: string): string {
  const trimmed = body.trim();
  try {
    const json = JSON.parse(trimmed) as Record<string, unknown>;
    const nested = json.error;
    const nestedMessage = typeof nested === "object" && nested !== null ? (nested as Record<string, unknown>).message : nested;
    const message =
      (typeof json.message === "string" && json.message) ||
      (typeof nestedMessage === "string" && nestedMessage) ||
      (typeof json.detail === "string" && json.detail) ||
      (typeof json.code === "string" && json.code);
    if (message) return message;
  } catch {
    // not JSON: use the text itself
  }
  return trimmed.slice(0, 300) || "(empty body)";
}

/** Reads a body chunk by chunk, stopping once it passes `limit` bytes (null); the caller aborts the request. */
export async function readCapped(response: Response, limit: number): Promise<string | null> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  if (!response.body) return "";
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limit) return null;
    chunks.push(value);
  }
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(out);
}

/** The request body: only what the model accepts (a V4 model takes no `style`; a custom style is `style_id` alone). */
function generationBody(parameters: ResolvedRecraftRequest, prompt: string) {
  const { model, style, styleId, size } = parameters;
  return {
    prompt,
    model: model.id,
    ...(style === undefined ? {} : { style }),
    ...(styleId === undefined ? {} : { style_id: styleId }),
    size,
    n: 1,
    response_format: "url",
  };
}

export async function requestGeneration(
  config: RecraftConfig,
  parameters: ResolvedRecraftRequest,
  apiKey: string,
  prompt: string,
): Promise<StepResult<{ url: string }>> {
  const started = Date.now();
  const details: StepDetails = {};
  const timeout = deadline(config.requestTimeoutMs);
  const request = requestSignal(timeout.signal);
  const finish = () => (request.stop(), timeout.clear(), (details.durationMs = Date.now() - started), details);
  try {
    const response = await fetch(`${config.apiUrl}/images/generations`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(generationBody(parameters, prompt)),
      // The API never redirects; following one would send the key to wherever it points.
      redirect: "manual",
      signal: request.signal,
    });
    details.httpStatus = response.status;
    details.recraftRequestId = response.headers.get("x-recraft-requestid") ?? undefined;
    const body = await readCapped(response, MAX_RESPONSE_BYTES);
    if (!response.ok) {
      const message = `Recraft answered ${response.status}: ${errorBodyMessage(body ?? "(oversized body)")}`;
      const httpStatus = response.status;
      if (httpStatus === 401 || httpStatus === 403) return failure("request", "unauthorized", message, finish(), { httpStatus });
      if (httpStatus === 429) {
        const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
        return failure("request", "rate_limited", message, finish(), { httpStatus, retryAfterMs });
      }
      return failure("request", "http_error", message, finish(), { httpStatus });
    }
    if (body === null) return failure("request", "bad_response", "response body exceeds 1 MiB", finish());
    let json: { data?: { url?: unknown }[]; credits?: unknown };
    try {
      json = JSON.parse(body);
    } catch {
      return failure("request", "bad_response", `response is not valid JSON: ${body.slice(0, 120)}`, finish());
    }
    if (typeof json?.credits === "number") details.credits = json.credits;
    const url = Array.isArray(json?.data) ? json.data[0]?.url : undefined;
    if (typeof url !== "string" || url === "") {
      return failure("request", "bad_response", "response has no data[0].url", finish());
    }
    return { ok: true, value: { url }, details: finish() };
  } catch (error) {
    return thrownFailure("request", error, finish());
  }
}

export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Only https (or http on loopback, for local stacks) to a host in RECRAFT_IMAGE_HOSTS. */
export function checkImageUrl(raw: string, allowedHosts: string[]): { ok: true; url: URL } | { ok: false; message: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: "image URL is not a valid absolute URL" };
  }
  const secure = url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));
  if (!secure) return { ok: false, message: `image URL scheme ${url.protocol} is not allowed for host ${url.hostname || "(none)"}` };
  if (url.username || url.password) return { ok: false, message: "image URL carries credentials" };
  if (!allowedHosts.includes(url.hostname.toLowerCase())) {
    return { ok: false, message: `image host ${url.hostname} is not in RECRAFT_IMAGE_HOSTS` };
  }
  return { ok: true, url };
}

export type Image = { blob: Blob; bytes: number; contentType: string; sha256: string };

/**
 * Reads the image chunk by chunk into a Blob of per-chunk parts, hashing as it
 * goes, and stops once it passes `limit` bytes (null). Each chunk is copied
 * once, into its own part (Convex's runtime keeps a Blob's parts as
 * ArrayBuffers inside the isolate, and a Blob made of Blobs references them
 * without copying), and the fetched chunk is garbage at once. The image is
 * never assembled into one buffer here; `ctx.storage.store` copies the parts
 * once more, which the byte cap counts (lib/config.ts MAX_IMAGE_BYTES).
 */
export async function readImage(body: ReadableStream<Uint8Array>, limit: number, type: string) {
  const reader = body.getReader();
  const hash = new Sha256();
  const parts: Blob[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limit) return null;
    hash.update(value);
    parts.push(new Blob([value as BlobPart]));
  }
  return { blob: new Blob(parts, { type }), bytes, sha256: hash.hex() };
}

/**
 * Downloads the image, following redirects by hand so each hop is checked
 * against the allowed hosts, refusing non-image content types, and enforcing
 * the byte cap while streaming (an oversized body is never buffered whole).
 * Every early exit aborts the hop's request, so its connection closes.
 */
export async function downloadImage(config: RecraftConfig, rawUrl: string): Promise<StepResult<Image>> {
  const started = Date.now();
  const details: StepDetails = {};
  const timeout = deadline(config.downloadTimeoutMs);
  let hop: ReturnType<typeof requestSignal> | undefined;
  const finish = () => (hop?.stop(), timeout.clear(), (details.durationMs = Date.now() - started), details);
  try {
    let checked = checkImageUrl(rawUrl, config.imageHosts);
    for (let hops = 0; ; hops++) {
      if (!checked.ok) return failure("download", "disallowed_url", checked.message, finish());
      details.imageHost = checked.url.hostname;
      hop?.stop();
      hop = requestSignal(timeout.signal);
      const response = await fetch(checked.url, { redirect: "manual", signal: hop.signal });
      details.httpStatus = response.status;
      // A runtime that follows redirects itself still reports where it ended up.
      if (response.redirected && response.url) {
        const landed = checkImageUrl(response.url, config.imageHosts);
        if (!landed.ok) return failure("download", "disallowed_url", `redirected: ${landed.message}`, finish());
      }
      if (REDIRECT_STATUSES.has(response.status)) {
        const location = response.headers.get("location");
        if (!location || hops >= MAX_REDIRECTS) {
          return failure("download", "http_error", `image redirect ${location ? "limit exceeded" : "has no Location"}`, finish(), {
            httpStatus: response.status,
          });
        }
        checked = checkImageUrl(new URL(location, checked.url).href, config.imageHosts);
        continue; // the next hop stops this one's request first
      }
      if (!response.ok) {
        return failure("download", "http_error", `image download answered ${response.status}`, finish(), { httpStatus: response.status });
      }
      const contentType = (response.headers.get("content-type") ?? "").replace(/;.*/s, "").trim().toLowerCase();
      details.contentType = contentType || undefined;
      if (!contentType.startsWith("image/")) {
        return failure("download", "bad_content_type", `image download has content type ${contentType || "(none)"}`, finish());
      }
      const declared = Number(response.headers.get("content-length") ?? NaN);
      if (declared > config.maxBytes) {
        details.bytes = declared;
        return failure("download", "too_large", `image is ${declared} bytes; the limit is ${config.maxBytes}`, finish());
      }
      const image = response.body
        ? await readImage(response.body, config.maxBytes, contentType)
        : { blob: new Blob([]), bytes: 0, sha256: "" };
      if (!image) return failure("download", "too_large", `image exceeds the limit of ${config.maxBytes} bytes`, finish());
      details.bytes = image.bytes;
      if (image.bytes === 0) return failure("download", "bad_response", "image body is empty", finish());
      // The checksum storage records too: it finds the file if the action dies between storing it and saying so.
      details.sha256 = image.sha256;
      return { ok: true, value: { ...image, contentType }, details: finish() };
    }
  } catch (error) {
    return thrownFailure("download", error, finish());
  }
}
