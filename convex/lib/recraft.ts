/**
 * Recraft's wire protocol, as the pipeline's action speaks it: one generation
 * request and one guarded image download. Expected failures come back as a
 * JobError with a stable code, never as an exception.
 */
import type { JobError, PipelineStep, StepDetails } from "../validators";
import type { RecraftConfig } from "./config";
import { describeError, redact } from "./redact";

export type StepResult<T> =
  | { ok: true; value: T; details: StepDetails }
  | { ok: false; error: JobError; details: StepDetails };

const MAX_RESPONSE_BYTES = 1024 * 1024; // a generation answer is a few hundred bytes
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * An abort signal that fires after `ms`, from AbortController and setTimeout
 * (which every Convex runtime has), cleared once the step is over.
 */
function deadline(ms: number) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("deadline exceeded", "TimeoutError")), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
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
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
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

/** Reads a body chunk by chunk, stopping (and cancelling the stream) once it passes `limit` bytes. */
async function readCapped(response: Response, limit: number): Promise<{ chunks: Uint8Array[]; bytes: number } | null> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  if (!response.body) return { chunks, bytes };
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, bytes };
    bytes += value.byteLength;
    if (bytes > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
}

async function readText(response: Response, limit: number): Promise<string | null> {
  const body = await readCapped(response, limit);
  return body && new TextDecoder().decode(concat(body.chunks, body.bytes));
}

function concat(chunks: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

export async function requestGeneration(config: RecraftConfig, apiKey: string, prompt: string): Promise<StepResult<{ url: string }>> {
  const started = Date.now();
  const details: StepDetails = {};
  const timeout = deadline(config.requestTimeoutMs);
  const finish = () => (timeout.clear(), (details.durationMs = Date.now() - started), details);
  try {
    const response = await fetch(`${config.apiUrl}/images/generations`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        prompt,
        model: config.model,
        style: config.style,
        size: config.size,
        n: 1,
        response_format: "url",
      }),
      // The API never redirects; following one would send the key to wherever it points.
      redirect: "manual",
      signal: timeout.signal,
    });
    details.httpStatus = response.status;
    details.recraftRequestId = response.headers.get("x-recraft-requestid") ?? undefined;
    const body = await readText(response, MAX_RESPONSE_BYTES);
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

function isLoopback(hostname: string): boolean {
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

const hex = (digest: ArrayBuffer) => Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Downloads the image, following redirects by hand so each hop is checked
 * against the allowed hosts, refusing non-image content types, and enforcing
 * the byte cap while streaming (an oversized body is never buffered whole).
 */
export async function downloadImage(config: RecraftConfig, rawUrl: string): Promise<StepResult<Image>> {
  const started = Date.now();
  const details: StepDetails = {};
  const timeout = deadline(config.downloadTimeoutMs);
  const finish = () => (timeout.clear(), (details.durationMs = Date.now() - started), details);
  try {
    let checked = checkImageUrl(rawUrl, config.imageHosts);
    for (let hop = 0; ; hop++) {
      if (!checked.ok) return failure("download", "disallowed_url", checked.message, finish());
      details.imageHost = checked.url.hostname;
      const response = await fetch(checked.url, { redirect: "manual", signal: timeout.signal });
      details.httpStatus = response.status;
      // A runtime that follows redirects itself still reports where it ended up.
      if (response.redirected && response.url) {
        const landed = checkImageUrl(response.url, config.imageHosts);
        if (!landed.ok) {
          await response.body?.cancel().catch(() => {});
          return failure("download", "disallowed_url", `redirected: ${landed.message}`, finish());
        }
      }
      if (REDIRECT_STATUSES.has(response.status)) {
        await response.body?.cancel().catch(() => {});
        const location = response.headers.get("location");
        if (!location || hop >= MAX_REDIRECTS) {
          return failure("download", "http_error", `image redirect ${location ? "limit exceeded" : "has no Location"}`, finish(), {
            httpStatus: response.status,
          });
        }
        checked = checkImageUrl(new URL(location, checked.url).href, config.imageHosts);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        return failure("download", "http_error", `image download answered ${response.status}`, finish(), {
          httpStatus: response.status,
        });
      }
      const contentType = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
      details.contentType = contentType || undefined;
      if (!contentType.startsWith("image/")) {
        await response.body?.cancel().catch(() => {});
        return failure("download", "bad_content_type", `image download has content type ${contentType || "(none)"}`, finish());
      }
      const declared = Number(response.headers.get("content-length") ?? NaN);
      if (declared > config.maxBytes) {
        await response.body?.cancel().catch(() => {});
        details.bytes = declared;
        return failure("download", "too_large", `image is ${declared} bytes; the limit is ${config.maxBytes}`, finish());
      }
      const body = await readCapped(response, config.maxBytes);
      if (!body) return failure("download", "too_large", `image exceeds the limit of ${config.maxBytes} bytes`, finish());
      details.bytes = body.bytes;
      if (body.bytes === 0) return failure("download", "bad_response", "image body is empty", finish());
      const bytes = body.chunks.length === 1 ? body.chunks[0] : concat(body.chunks, body.bytes);
      body.chunks = []; // let the chunks go before the Blob copies the bytes: the image is held at most twice
      // The checksum storage records too: it finds the file if the action dies between storing it and saying so.
      details.sha256 = hex(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
      const blob = new Blob([bytes as BlobPart], { type: contentType });
      return { ok: true, value: { blob, bytes: body.bytes, contentType, sha256: details.sha256 }, details: finish() };
    }
  } catch (error) {
    return thrownFailure("download", error, finish());
  }
}
