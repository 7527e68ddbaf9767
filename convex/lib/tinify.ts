/**
 * Compression before storing, the game's way: TinyPNG's API. `POST /shrink`
 * with the downloaded image, then `POST` to the output URL it answers with a
 * `fit` resize to PORTRAIT_MAX_SIDE, and the bytes that come back are stored
 * instead of the original.
 *
 * Compression is an improvement, never a requirement: every failure (no key,
 * any status, a timeout, a body that is not what the API documents, an output
 * URL on another host, an image past the byte cap) returns the reason and the
 * caller stores the original. The same guards as the download: one deadline
 * for both exchanges, the byte cap enforced while streaming, every early exit
 * aborts its request, redirects are not followed (the key would go with them),
 * and no message carries the key.
 */
import type { CompressionDetails } from "../validators";
import type { TinifyConfig } from "./config";
import { deadline, isLoopback, readCapped, readImage, requestSignal, type Image } from "./recraft";
import { describeError, redact } from "./redact";

const MAX_JSON_BYTES = 64 * 1024;

export type Compression = { image: Image | null; details: CompressionDetails };

function errorText(body: string | null): string {
  if (body === null) return "(oversized body)";
  try {
    const json = JSON.parse(body) as { error?: unknown; message?: unknown };
    const parts = [json.error, json.message].filter((part): part is string => typeof part === "string" && part !== "");
    if (parts.length > 0) return parts.join(": ");
  } catch {
    // not JSON: the text itself
  }
  return body.trim().slice(0, 200) || "(empty body)";
}

/** `output.url` of a /shrink answer, when the Location header is missing. */
function outputUrlOf(body: string | null): string | null {
  try {
    const url = (JSON.parse(body ?? "") as { output?: { url?: unknown } }).output?.url;
    return typeof url === "string" && url !== "" ? url : null;
  } catch {
    return null;
  }
}

/** The output URL, if it is on TINIFY_API_URL's own host (and scheme): the key is sent to it. */
function sameHost(raw: string | null, apiUrl: URL): URL | null {
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw, apiUrl);
  } catch {
    return null;
  }
  const secure = url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));
  return secure && url.protocol === apiUrl.protocol && url.host === apiUrl.host && !url.username && !url.password ? url : null;
}

/**
 * Compresses `image`, or says why not. Never throws; `image` is null when the
 * original is to be stored.
 */
export async function compressImage(config: TinifyConfig, original: Image): Promise<Compression> {
  const details: CompressionDetails = { outcome: "skipped", originalBytes: original.bytes };
  if (!config.apiKey) return { image: null, details: { ...details, reason: "TINIFY_API_KEY is not set" } };

  const started = Date.now();
  const timeout = deadline(config.timeoutMs);
  let request: ReturnType<typeof requestSignal> | undefined;
  const finish = () => (request?.stop(), timeout.clear(), (details.durationMs = Date.now() - started), details);
  const failed = (reason: string, httpStatus?: number): Compression => {
    const done = finish();
    return {
      image: null,
      details: { ...done, outcome: "failed", reason: redact(`${reason}; stored the original`), ...(httpStatus ? { httpStatus } : {}) },
    };
  };
  const count = (response: Response) => {
    const value = Number(response.headers.get("compression-count"));
    if (Number.isInteger(value) && value >= 0) details.compressionCount = value;
  };
  const authorization = `Basic ${btoa(`api:${config.apiKey}`)}`;

  try {
    const api = new URL(config.apiUrl);
    request = requestSignal(timeout.signal);
    const shrink = await fetch(`${config.apiUrl}/shrink`, {
      method: "POST",
      headers: { Authorization: authorization, "Content-Type": original.contentType },
      body: original.blob,
      redirect: "manual",
      signal: request.signal,
    });
    count(shrink);
    const shrinkBody = await readCapped(shrink, MAX_JSON_BYTES);
    if (shrink.status !== 201) return failed(`TinyPNG /shrink answered ${shrink.status}: ${errorText(shrinkBody)}`, shrink.status);
    const raw = shrink.headers.get("location") ?? outputUrlOf(shrinkBody);
    if (!raw) return failed("TinyPNG /shrink answered 201 with no output URL");
    const output = sameHost(raw, api);
    if (!output) return failed(`TinyPNG's output URL is not on ${api.host}, the host TINIFY_API_URL names`);

    request.stop();
    request = requestSignal(timeout.signal);
    const side = config.maxSide;
    const response = await fetch(output, {
      method: "POST",
      headers: { Authorization: authorization, "Content-Type": "application/json" },
      body: JSON.stringify({ resize: { method: "fit", width: side, height: side } }),
      redirect: "manual",
      signal: request.signal,
    });
    count(response);
    if (!response.ok)
      return failed(
        `TinyPNG's output answered ${response.status}: ${errorText(await readCapped(response, MAX_JSON_BYTES))}`,
        response.status,
      );
    const contentType = (response.headers.get("content-type") ?? "").replace(/;.*/s, "").trim().toLowerCase();
    if (!contentType.startsWith("image/")) return failed(`TinyPNG's output has content type ${contentType || "(none)"}`);
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > config.maxBytes) return failed(`TinyPNG's output is ${declared} bytes; the limit is ${config.maxBytes}`);
    const image = response.body ? await readImage(response.body, config.maxBytes, contentType) : null;
    if (!image) return failed(`TinyPNG's output exceeds the limit of ${config.maxBytes} bytes`);
    if (image.bytes === 0) return failed("TinyPNG's output is empty");
    const width = Number(response.headers.get("image-width"));
    const height = Number(response.headers.get("image-height"));
    const done = finish();
    return {
      image: { ...image, contentType },
      details: {
        ...done,
        outcome: "compressed",
        compressedBytes: image.bytes,
        ...(Number.isInteger(width) && width > 0 ? { width } : {}),
        ...(Number.isInteger(height) && height > 0 ? { height } : {}),
      },
    };
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    if (name === "TimeoutError" || name === "AbortError") return failed(`TinyPNG timed out after ${config.timeoutMs} ms`);
    return failed(`TinyPNG request failed: ${describeError(error)}`);
  }
}
