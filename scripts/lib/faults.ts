/**
 * What the demo's fake Recraft server paints and how it misbehaves: a distinct
 * dark portrait and a 1–3 s latency per prompt, and `--fail-rate` faults.
 */
import { createHash } from "node:crypto";
import type { AnthropicBehavior, AnthropicBehaviorSetting } from "../fakes/anthropicServer.ts";
import type { Fault, FaultPicker } from "../fakes/recraftServer.ts";
import { portraitPng } from "../fakes/png.ts";

/** A stable number in [0, 1) for a string. */
function unitHash(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/** Portraits are deterministic per prompt, so paint each once. */
export function painter(size: number): (prompt: string) => Uint8Array {
  const cache = new Map<string, Uint8Array>();
  return (prompt) => {
    let png = cache.get(prompt);
    if (!png) cache.set(prompt, (png = portraitPng(prompt, size)));
    return png;
  };
}

/** Generation latency 0.8–2.6 s per prompt; with the 200 ms download, 1–3 s per portrait. */
export const DEMO_DOWNLOAD_LATENCY_MS = 200;
export const demoLatency = (prompt: string) => 800 + Math.round(unitHash(prompt) * 1800);

/** Realistic failures, in rotation: transient ones (retried) and permanent ones. */
export const DEMO_FAULTS: Fault[] = [
  {
    kind: "status",
    status: 429,
    json: { code: "rate_limit_exceeded", message: "Too many requests, slow down" },
    headers: { "retry-after": "1" },
  },
  { kind: "status", status: 500, body: "Internal Server Error" },
  { kind: "status", status: 503, json: { code: "service_unavailable", message: "The service is temporarily overloaded" } },
  { kind: "status", status: 401, json: { code: "invalid_api_key", message: "Invalid API key" } },
  { kind: "imageStatus", status: 404, body: "Not Found" },
  { kind: "imageContentType", contentType: "text/html; charset=utf-8" },
];

/**
 * Fails exactly `rate` of generation requests, spread evenly over the request
 * sequence (request i fails when floor((i+1)·rate) steps up), cycling through
 * DEMO_FAULTS. Deterministic: the same run order gives the same failures.
 */
export function failRatePicker(rate: number, faults: Fault[] = DEMO_FAULTS): FaultPicker | undefined {
  if (rate <= 0) return undefined;
  return ({ index }) => {
    const before = Math.floor(index * rate + 1e-9);
    const after = Math.floor((index + 1) * rate + 1e-9);
    return after > before ? faults[before % faults.length] : undefined;
  };
}

/** Claude's transient failures, in rotation: both retried by the story run. */
const CLAUDE_FAULTS: AnthropicBehavior[] = [
  { kind: "overloaded" },
  { kind: "status", status: 500, body: { type: "error", error: { type: "api_error", message: "Internal server error" } } },
];

/** The SDK retries a failed request twice itself, so a whole attempt is three requests. */
const REQUESTS_PER_ATTEMPT = 3;

/**
 * Fails `rate` of story attempts (spread evenly, like failRatePicker): a failed
 * attempt answers all three of the SDK's requests with the same 529 or 500, so
 * the run itself retries after STORY_RETRY_DELAY_MS. Deterministic in request
 * order.
 */
export function claudeFailRate(rate: number, faults: AnthropicBehavior[] = CLAUDE_FAULTS): AnthropicBehaviorSetting | undefined {
  if (rate <= 0) return undefined;
  let attempts = 0;
  let burst = 0;
  let fault: AnthropicBehavior = faults[0]!;
  return () => {
    if (burst > 0) {
      burst--;
      return fault;
    }
    const before = Math.floor(attempts * rate + 1e-9);
    attempts++;
    if (Math.floor(attempts * rate + 1e-9) === before) return undefined;
    fault = faults[before % faults.length]!;
    burst = REQUESTS_PER_ATTEMPT - 1;
    return fault;
  };
}
