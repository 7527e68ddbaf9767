/**
 * Compression as a step of the portrait job (the game's TinyPNG step), against
 * the fake TinyPNG on 127.0.0.1: with TINIFY_API_KEY the stored file is
 * TinyPNG's, resized to fit PORTRAIT_MAX_SIDE; without it nothing is sent; any
 * failure stores the original and the `downloaded` event says why. The key
 * never reaches a log line, an event or an error.
 */
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import type { Id } from "../convex/_generated/dataModel";
import { decodePngSize } from "../scripts/fakes/png";
import type { TinifyFault } from "../scripts/fakes/tinifyServer";
import { captureLogs, runPortrait, startStack, TINIFY_KEY, type Stack } from "./harness";
import { expectInvariants, snapshot } from "./invariants";

let stack: Stack;
let lines: string[];
beforeEach(async () => {
  stack = await startStack({ env: { TINIFY_API_KEY: TINIFY_KEY } });
  lines = captureLogs(); // every log line, so the secret checks below read them too
});
afterEach(async () => {
  try {
    await expectInvariants(stack.t);
    const basic = Buffer.from(`api:${TINIFY_KEY}`).toString("base64");
    const everything = JSON.stringify(await snapshot(stack.t)) + lines.join("\n");
    expect(everything).not.toContain(TINIFY_KEY);
    expect(everything).not.toContain(basic);
  } finally {
    await stack.close();
    vi.restoreAllMocks();
  }
});

/** The stored portrait's bytes. */
async function storedBytes(storyId: Id<"stories">): Promise<Buffer> {
  const buffer = await stack.t.run(async (ctx) => {
    const story = await ctx.db.get(storyId);
    const blob = await ctx.storage.get(story!.storageId!);
    return blob!.arrayBuffer();
  });
  return Buffer.from(buffer);
}

const downloadedEvent = (events: Awaited<ReturnType<typeof runPortrait>>["events"]) => events.find((e) => e.to === "downloaded")!;

describe("with TINIFY_API_KEY", () => {
  test("the stored file is TinyPNG's, resized to fit PORTRAIT_MAX_SIDE; the event has the sizes before and after", async () => {
    stack.setEnv({ PORTRAIT_MAX_SIDE: "32" }); // the fake Recraft paints 64x64
    const { storyId, job, path, events } = await runPortrait(stack.t);
    expect(path).toBe("pending>requested>downloaded>stored");
    expect(job!.status).toBe("stored");

    const [shrink, output] = stack.tinify.requests;
    expect(shrink).toMatchObject({ method: "POST", path: "/shrink", status: 201 });
    expect(shrink!.headers.authorization).toBe(`Basic ${Buffer.from(`api:${TINIFY_KEY}`).toString("base64")}`);
    expect(output).toMatchObject({ method: "POST", status: 200, json: { resize: { method: "fit", width: 32, height: 32 } } });
    expect(stack.tinify.requests).toHaveLength(2);

    const stored = await storedBytes(storyId);
    expect(decodePngSize(stored)).toEqual({ width: 32, height: 32 });
    const { details } = downloadedEvent(events);
    expect(details!.compression).toMatchObject({
      outcome: "compressed",
      originalBytes: shrink!.bytes,
      compressedBytes: stored.length,
      width: 32,
      height: 32,
      compressionCount: 1,
    });
    expect(stored.length).toBeLessThan(shrink!.bytes);
    // Recovery finds the file about to be stored by these: they are the compressed file's.
    expect(details).toMatchObject({
      bytes: stored.length,
      sha256: createHash("sha256").update(stored).digest("hex"),
      contentType: "image/png",
    });
  });

  test("PORTRAIT_MAX_SIDE defaults to 1024, and a smaller image is not enlarged", async () => {
    const { storyId } = await runPortrait(stack.t);
    expect(stack.tinify.requests[1]!.json).toEqual({ resize: { method: "fit", width: 1024, height: 1024 } });
    expect(decodePngSize(await storedBytes(storyId))).toEqual({ width: 64, height: 64 });
  });
});

test("without TINIFY_API_KEY nothing is sent and the original is stored; the event says compression was skipped", async () => {
  stack.setEnv({ TINIFY_API_KEY: undefined });
  const { storyId, events } = await runPortrait(stack.t);
  expect(stack.tinify.requests).toHaveLength(0);
  const stored = await storedBytes(storyId);
  expect(downloadedEvent(events).details!.compression).toEqual({
    outcome: "skipped",
    originalBytes: stored.length,
    reason: "TINIFY_API_KEY is not set",
  });
});

describe("any TinyPNG failure stores the original and says why in the event; the job is stored", () => {
  const origin = () => stack.recraft.origin;
  const cases: [string, () => TinifyFault | undefined, Record<string, string>, RegExp, number?][] = [
    [
      "a key TinyPNG refuses (401)",
      () => undefined,
      { TINIFY_API_KEY: "not-the-right-key" },
      /\/shrink answered 401: Unauthorized: Credentials are invalid/,
      401,
    ],
    [
      "the month's limit (429)",
      () => ({ kind: "status", status: 429, error: "Too many requests", message: "Your monthly limit has been exceeded" }),
      {},
      /answered 429: Too many requests: Your monthly limit/,
      429,
    ],
    [
      "an unsupported type (415)",
      () => ({ kind: "status", status: 415, error: "Unsupported media type", message: "File type is not supported." }),
      {},
      /answered 415/,
      415,
    ],
    ["a server error (503)", () => ({ kind: "status", status: 503 }), {}, /answered 503/, 503],
    ["a /shrink that never answers", () => ({ kind: "hang" }), { PORTRAIT_COMPRESS_TIMEOUT_MS: "300" }, /TinyPNG timed out after 300 ms/],
    [
      "an output that never answers",
      () => ({ kind: "outputHang" }),
      { PORTRAIT_COMPRESS_TIMEOUT_MS: "300" },
      /TinyPNG timed out after 300 ms/,
    ],
    ["a 201 that is not JSON and has no Location", () => ({ kind: "malformedJson" }), {}, /201 with no output URL/],
    [
      "an output URL on another host",
      () => ({ kind: "foreignLocation", location: `${origin()}/output/stolen` }),
      {},
      /output URL is not on 127\.0\.0\.1:\d+, the host TINIFY_API_URL names/,
    ],
    ["an output that fails (500)", () => ({ kind: "outputStatus", status: 500 }), {}, /output answered 500/, 500],
    ["an output that is not an image", () => ({ kind: "outputContentType", contentType: "text/html" }), {}, /content type text\/html/],
    [
      "an output past PORTRAIT_MAX_BYTES",
      () => ({ kind: "outputEndless" }),
      { PORTRAIT_MAX_BYTES: "200000" },
      /exceeds the limit of 200000 bytes/,
    ],
    [
      "an error that echoes the key",
      () => ({ kind: "echoKey" }),
      {},
      /answered 401: Unauthorized: Credentials are invalid: Basic \[redacted\]/,
      401,
    ],
  ];

  test.each(cases)("%s", async (_name, fault, env, reason, httpStatus) => {
    stack.setEnv(env);
    stack.tinify.setFault(fault());
    const { storyId, job, path, events } = await runPortrait(stack.t);
    expect(path).toBe("pending>requested>downloaded>stored");
    expect(job!.status).toBe("stored");
    const stored = await storedBytes(storyId);
    const { compression } = downloadedEvent(events).details!;
    expect(compression).toMatchObject({ outcome: "failed", originalBytes: stored.length });
    expect(compression!.reason).toMatch(reason);
    expect(compression!.reason).toMatch(/stored the original$/);
    expect(compression!.httpStatus).toBe(httpStatus);
    expect(compression!.compressedBytes).toBeUndefined();
    // The original is the Recraft fake's image, byte for byte.
    expect(decodePngSize(stored)).toEqual({ width: 64, height: 64 });
    // Every TinyPNG connection was closed, and nothing was sent to the foreign host.
    await vi.waitFor(() => expect(stack.tinify.requests.every((r) => r.closed)).toBe(true));
    expect(stack.recraft.imageRequests).toHaveLength(1);
  });

  test("an endless output is abandoned near the cap, not read to the end", async () => {
    stack.setEnv({ PORTRAIT_MAX_BYTES: "200000" });
    stack.tinify.setFault({ kind: "outputEndless" });
    await runPortrait(stack.t);
    await vi.waitFor(() => expect(stack.tinify.requests[1]!.closed).toBe(true));
    const sent = stack.tinify.requests[1]!.bytesSent;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stack.tinify.requests[1]!.bytesSent).toBe(sent); // nothing more after the close
    expect(sent).toBeLessThan(200_000 + 8 * 1024 * 1024); // the cap plus what the socket buffers held
  });
});
