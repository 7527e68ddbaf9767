/**
 * generatePatientPortrait against a Recraft-compatible server on 127.0.0.1:
 * the happy path, every fault it must survive, and the compare-and-set rules.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Fault } from "../scripts/fakes/recraftServer";
import { decodePngSize, portraitPng } from "../scripts/fakes/png";
import { captureLogs, caseFile, eventsOf, jobOf, pathOf, RECRAFT_KEY, runPortrait, settle, startStack, type Stack } from "./harness";
import { expectInvariants, snapshot } from "./invariants";

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
  vi.restoreAllMocks();
});

const runOne = (overrides?: Record<string, unknown>) => runPortrait(stack.t, overrides);

describe("happy path", () => {
  test("a story's portrait is requested, downloaded, stored and patched into the story", async () => {
    const { storyId, job, path, events } = await runOne();
    expect(path).toBe("pending>requested>downloaded>stored");
    expect(job).toMatchObject({ status: "stored", attempt: 1, slot: { kind: "none" } });
    const { story, buffer } = await stack.t.run(async (ctx) => {
      const story = (await ctx.db.get(storyId))!;
      const blob = await ctx.storage.get(story.storageId!);
      return { story, buffer: await blob!.arrayBuffer() };
    });
    const bytes = new Uint8Array(buffer);
    expect(story.storageId).toBe(job!.storageId);
    expect(bytes).toEqual(portraitPng(caseFile().imageGenerationPrompt));
    expect(decodePngSize(bytes)).not.toBeNull();

    const downloaded = events.find((e) => e.to === "downloaded")!;
    const request = stack.recraft.requests[0];
    expect(downloaded.details).toMatchObject({
      httpStatus: 200,
      recraftRequestId: request!.requestId,
      credits: 1,
      bytes: bytes.length,
      contentType: "image/png",
      imageHost: "127.0.0.1",
    });
    expect(events.find((e) => e.to === "stored")!.details).toMatchObject({ bytes: bytes.length });
    await expectInvariants(stack.t);
  });

  test("the request carries the bearer key and the configured parameters, and passes Recraft's schema", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv2", RECRAFT_STYLE: "digital_illustration", RECRAFT_SIZE: "1024x1365" });
    await runOne();
    const [request] = stack.recraft.requests;
    expect(request!.headers.authorization).toBe(`Bearer ${RECRAFT_KEY}`);
    expect(request!.validationErrors).toEqual([]);
    expect(request!.body).toEqual({
      prompt: caseFile().imageGenerationPrompt,
      model: "recraftv2",
      style: "digital_illustration",
      size: "1024x1365",
      n: 1,
      response_format: "url",
    });
  });

  test("a redirect to another allowed URL is followed", async () => {
    stack.recraft.setFault({ kind: "imageRedirect", location: "{origin}/raw/{id}.png" });
    const { path } = await runOne();
    expect(path).toBe("pending>requested>downloaded>stored");
  });
});

type Expected = { code: string; step: string; httpStatus?: number; message?: RegExp };

const requestFaults: [string, Fault, Expected][] = [
  [
    "401 with a JSON body",
    { kind: "status", status: 401, json: { code: "not_authorized", message: "bad key" } },
    { code: "unauthorized", step: "request", httpStatus: 401, message: /bad key/ },
  ],
  [
    "403 with a text body",
    { kind: "status", status: 403, body: "Forbidden" },
    { code: "unauthorized", step: "request", httpStatus: 403, message: /Forbidden/ },
  ],
  [
    "429 with Retry-After",
    { kind: "status", status: 429, body: "slow down", headers: { "retry-after": "7" } },
    { code: "rate_limited", step: "request", httpStatus: 429 },
  ],
  [
    "429 without Retry-After",
    { kind: "status", status: 429, json: { error: { message: "too many requests" } } },
    { code: "rate_limited", step: "request", httpStatus: 429, message: /too many requests/ },
  ],
  [
    "400 with a JSON body",
    { kind: "status", status: 400, json: { code: "invalid_prompt", message: "prompt rejected" } },
    { code: "http_error", step: "request", httpStatus: 400, message: /prompt rejected/ },
  ],
  [
    "500 with a text body",
    { kind: "status", status: 500, body: "Internal Server Error" },
    { code: "http_error", step: "request", httpStatus: 500, message: /Internal Server Error/ },
  ],
  [
    "503 with a JSON body",
    { kind: "status", status: 503, json: { message: "maintenance" } },
    { code: "http_error", step: "request", httpStatus: 503, message: /maintenance/ },
  ],
  [
    "a redirect, never followed with the key",
    { kind: "status", status: 307, body: "", headers: { location: "http://localhost:9/steal" } },
    { code: "http_error", step: "request", httpStatus: 307 },
  ],
  ["a hang", { kind: "hang" }, { code: "timeout", step: "request" }],
  ["a connection reset", { kind: "reset" }, { code: "network_error", step: "request" }],
  ["malformed JSON", { kind: "malformedJson" }, { code: "bad_response", step: "request", message: /not valid JSON/ }],
  ["empty data", { kind: "emptyData" }, { code: "bad_response", step: "request", message: /data\[0\]\.url/ }],
  ["no url", { kind: "noUrl" }, { code: "bad_response", step: "request", message: /data\[0\]\.url/ }],
];

const urlFaults: [string, string, RegExp][] = [
  ["a foreign https host", "https://evil.example.com/x.png", /evil\.example\.com is not in RECRAFT_IMAGE_HOSTS/],
  ["plain http to a non-loopback host", "http://img.recraft.ai/x.png", /scheme http: is not allowed/],
  ["a file: URL", "file:///etc/passwd", /scheme file: is not allowed/],
  ["the cloud metadata address", "http://169.254.169.254/latest/meta-data/", /scheme http: is not allowed/],
  ["a loopback host not in the list", "http://localhost:9/x.png", /localhost is not in RECRAFT_IMAGE_HOSTS/],
  ["not a URL at all", "::not a url::", /not a valid absolute URL/],
];

const downloadFaults: [string, Fault, Expected][] = [
  ["a 404", { kind: "imageStatus", status: 404, body: "gone" }, { code: "http_error", step: "download", httpStatus: 404 }],
  ["a hang", { kind: "imageHang" }, { code: "timeout", step: "download" }],
  ["a slow drip past the timeout", { kind: "imageSlowDrip", chunkBytes: 8, intervalMs: 400 }, { code: "timeout", step: "download" }],
  ["a reset mid-body", { kind: "imageReset" }, { code: "network_error", step: "download" }],
  ["a truncated body", { kind: "imageTruncated" }, { code: "network_error", step: "download" }],
  [
    "an HTML content type",
    { kind: "imageContentType", contentType: "text/html" },
    { code: "bad_content_type", step: "download", message: /text\/html/ },
  ],
  [
    "a redirect off the allowed hosts",
    { kind: "imageRedirect", location: "https://evil.example.com/x.png" },
    { code: "disallowed_url", step: "download" },
  ],
  [
    "a redirect to plain http elsewhere",
    { kind: "imageRedirect", location: "http://10.0.0.1/x.png" },
    { code: "disallowed_url", step: "download" },
  ],
];

async function expectFailed(expected: Expected, path = "pending>requested>failed") {
  const { job, path: actual, events } = await runOne();
  expect(actual).toBe(path);
  expect(job!.status).toBe("failed");
  expect(job!.error).toMatchObject({ code: expected.code, step: expected.step });
  if (expected.httpStatus) expect(job!.error!.httpStatus).toBe(expected.httpStatus);
  if (expected.message) expect(job!.error!.message).toMatch(expected.message);
  expect(events.at(-1)!.error).toEqual(job!.error);
  const { files } = await snapshot(stack.t);
  expect(files).toHaveLength(0);
  await expectInvariants(stack.t);
  return job;
}

describe("the generation request fails", () => {
  test.each(requestFaults)("%s", async (_name, fault, expected) => {
    stack.recraft.setFault(fault);
    stack.setEnv({ PORTRAIT_REQUEST_TIMEOUT_MS: "300" });
    await expectFailed(expected);
  });

  test("Retry-After is kept on the error for the scheduler and the auditor", async () => {
    stack.recraft.setFault({ kind: "status", status: 429, body: "slow down", headers: { "retry-after": "7" } });
    const job = await expectFailed({ code: "rate_limited", step: "request" });
    expect(job!.error!.retryAfterMs).toBe(7000);
  });

  test("an echoed API key never reaches the job, its events or the logs", async () => {
    const lines = captureLogs();
    stack.recraft.setFault({ kind: "echoKey" });
    const job = await expectFailed({ code: "unauthorized", step: "request" });
    expect(job!.error!.message).toContain("[redacted]");
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("\n")).not.toContain(RECRAFT_KEY);
  });

  test("a provider echoing the bare key (no Bearer, no known key shape) is scrubbed by the exact-secret match", async () => {
    const lines = captureLogs();
    stack.recraft.setFault({ kind: "echoBareKey" });
    const job = await expectFailed({ code: "http_error", step: "request" });
    expect(job!.error!.message).toMatch(/token \[redacted\] may not use style/);
    const events = await eventsOf(stack.t, job!._id);
    expect(JSON.stringify(events)).not.toContain(RECRAFT_KEY);
    expect(lines.some((line) => line.includes("[redacted]"))).toBe(true);
    expect(lines.join("\n")).not.toContain(RECRAFT_KEY);
  });
});

describe("the image URL is refused before any download", () => {
  test.each(urlFaults)("%s", async (_name, url, message) => {
    stack.recraft.setFault({ kind: "imageUrl", url });
    await expectFailed({ code: "disallowed_url", step: "download", message });
    expect(stack.recraft.imageRequests).toHaveLength(0);
  });
});

describe("the image download fails", () => {
  test.each(downloadFaults)("%s", async (_name, fault, expected) => {
    stack.recraft.setFault(fault);
    stack.setEnv({ PORTRAIT_DOWNLOAD_TIMEOUT_MS: "300" });
    await expectFailed(expected);
  });

  test.each([true, false])("an oversized image (Content-Length sent: %s) is refused without buffering it", async (withContentLength) => {
    const maxBytes = 256 * 1024;
    stack.setEnv({ PORTRAIT_MAX_BYTES: String(maxBytes) });
    stack.recraft.setFault({ kind: "imageOversize", bytes: 64 * maxBytes, withContentLength });
    await expectFailed({ code: "too_large", step: "download" });
    // The client stopped reading near the cap, not at the end of the body.
    expect(stack.recraft.oversizeBytesSent).toBeLessThan(16 * maxBytes);
  });

  test("an endless body is cut at the cap", async () => {
    stack.setEnv({ PORTRAIT_MAX_BYTES: String(128 * 1024) });
    stack.recraft.setFault({ kind: "imageEndless" });
    await expectFailed({ code: "too_large", step: "download" });
    expect(stack.recraft.oversizeBytesSent).toBeLessThan(4 * 1024 * 1024);
  });
});

describe("validation before any request", () => {
  test("a missing RECRAFT_API_KEY fails the job without calling Recraft", async () => {
    stack.setEnv({ RECRAFT_API_KEY: undefined });
    await expectFailed({ code: "missing_api_key", step: "validate" }, "pending>failed");
    expect(stack.recraft.requests).toHaveLength(0);
  });

  test("a prompt blanked after insert fails as empty_prompt without calling Recraft", async () => {
    stack.setEnv({ PORTRAIT_MAX_CONCURRENCY: "1" });
    const blocker = await stack.t.mutation(internal.stories.insertStory, caseFile({ slug: "blocker" }));
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
    await stack.t.run((ctx) => ctx.db.patch(storyId, { imageGenerationPrompt: "   " }));
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(await pathOf(stack.t, job!._id)).toBe("pending>failed");
    expect(job!.error).toMatchObject({ code: "empty_prompt", step: "validate" });
    expect(stack.recraft.requests.map((r) => r.prompt)).toEqual([caseFile().imageGenerationPrompt]);
    expect((await jobOf(stack.t, blocker)).status).toBe("stored");
    await expectInvariants(stack.t);
  });
});

describe("storage", () => {
  test("a storage failure fails the job at the store step and keeps the story", async () => {
    // Fault injection into the storage backend: convex-test reads every blob it stores.
    vi.spyOn(Blob.prototype, "arrayBuffer").mockRejectedValueOnce(new Error("storage unavailable"));
    const { storyId } = await runOne().then(async (r) => {
      expect(r.path).toBe("pending>requested>downloaded>failed");
      expect(r.job!.error).toMatchObject({ code: "storage_error", step: "store" });
      expect(r.job!.error!.message).toMatch(/storage unavailable/);
      return r;
    });
    expect(await stack.t.run((ctx) => ctx.db.get(storyId))).not.toBeNull();
    await expectInvariants(stack.t);
  });
});
