/**
 * What the real runtime and the real provider demand, beyond convex-test:
 * every early exit of the download closes its connection, the request follows
 * the configured Recraft model (prompt limit, parameters), a bad model
 * configuration fails at the claim, and every numeric setting is clamped to
 * what the platform and the SDK accept.
 */
import { createHash } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import {
  ACTION_LIMIT_MS,
  MAX_IMAGE_BYTES,
  DEFAULT_MAX_CONCURRENCY,
  MAX_NONSTREAMING_TOKENS,
  queueConfig,
  recraftConfig,
  storyConfig,
  tinifyConfig,
} from "../convex/lib/config";
import { DEFAULT_RECRAFT_MODEL, RECRAFT_MODELS } from "../convex/lib/recraftModels";
import { Sha256 } from "../convex/lib/sha256";
import type { Fault, ImageRequest } from "../scripts/fakes/recraftServer";
import { captureLogs, caseFile, eventsOf, jobOf, pathOf, runPortrait, settle, startStack, type Stack } from "./harness";
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

/** The fake reports a connection's close as it sees it, a moment after the client leaves: wait for that state. */
async function closedImageRequests(count: number, timeoutMs = 5_000): Promise<ImageRequest[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const requests = stack.recraft.imageRequests;
    if (requests.length >= count && requests.every((r) => r.closed)) return requests;
    if (Date.now() > deadline) throw new Error(`image requests not closed: ${JSON.stringify(requests)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("every early exit of the download closes its connection", () => {
  const cap = 128 * 1024;
  const earlyExits: [string, Fault, { code: string; requests: number }][] = [
    ["the byte cap, no Content-Length (an endless body)", { kind: "imageEndless" }, { code: "too_large", requests: 1 }],
    [
      "the byte cap, from Content-Length",
      { kind: "imageOversize", bytes: 1 << 30, withContentLength: true },
      { code: "too_large", requests: 1 },
    ],
    [
      "a non-image content type",
      { kind: "imageContentType", contentType: "text/html", endless: true },
      { code: "bad_content_type", requests: 1 },
    ],
    ["a non-2xx status", { kind: "imageStatus", status: 404, endless: true }, { code: "http_error", requests: 1 }],
    [
      "a redirect off the allowed hosts",
      { kind: "imageRedirect", location: "https://evil.example.com/x.png", endless: true },
      { code: "disallowed_url", requests: 1 },
    ],
    [
      "too many redirect hops",
      { kind: "imageRedirect", location: "{origin}/images/{id}.png", endless: true },
      { code: "http_error", requests: 6 },
    ],
  ];

  test.each(earlyExits)("%s", async (_name, fault, expected) => {
    stack.setEnv({ PORTRAIT_MAX_BYTES: String(cap) });
    stack.recraft.setFault(fault);
    const { job, path } = await runOne();
    expect(path).toBe("pending>requested>failed");
    expect(job!.error).toMatchObject({ code: expected.code, step: "download" });
    const requests = await closedImageRequests(expected.requests);
    expect(requests).toHaveLength(expected.requests);
    for (const request of requests) {
      expect(request.closedEarly).toBe(true);
      // Cut near where the client stopped reading, not at the end of a 1 GiB or endless body.
      expect(request.bytesSent).toBeLessThan(cap + 8 * 1024 * 1024);
    }
    expect((await snapshot(stack.t)).files).toHaveLength(0);
    await expectInvariants(stack.t);
  });

  test("a redirect hop's own body is abandoned with its connection, and the image it points to is stored", async () => {
    stack.recraft.setFault({ kind: "imageRedirect", location: "{origin}/raw/{id}.png", endless: true });
    const { path } = await runOne();
    expect(path).toBe("pending>requested>downloaded>stored");
    const [hop, image] = await closedImageRequests(2);
    expect(hop).toMatchObject({ fault: "imageRedirect", closedEarly: true });
    expect(image).toMatchObject({ fault: undefined, closedEarly: false });
    await expectInvariants(stack.t);
  });

  test("a complete image leaves the fake's response complete", async () => {
    const { path } = await runOne();
    expect(path).toBe("pending>requested>downloaded>stored");
    const image = (await closedImageRequests(1))[0]!;
    expect(image.closedEarly).toBe(false);
    expect(image.bytesSent).toBeGreaterThan(0);
  });
});

describe("the checksum recovery relies on", () => {
  test("the incremental SHA-256 equals node:crypto's for any input cut into any chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600, size: "max" }), fc.array(fc.nat(130), { maxLength: 12, size: "max" }), (bytes, cuts) => {
        const hash = new Sha256();
        let offset = 0;
        for (const cut of cuts) {
          hash.update(bytes.subarray(offset, offset + cut));
          offset = Math.min(bytes.length, offset + cut);
        }
        hash.update(bytes.subarray(offset));
        expect(hash.hex()).toBe(createHash("sha256").update(bytes).digest("hex"));
      }),
    );
  });

  test("the downloaded event's checksum is the stored file's (storage records it in base64)", async () => {
    const { job } = await runOne();
    const downloaded = (await eventsOf(stack.t, job!._id)).find((e) => e.to === "downloaded")!;
    const [file] = (await snapshot(stack.t)).files as { sha256: string }[];
    expect(Buffer.from(downloaded.details!.sha256!, "hex").toString("base64")).toBe(file!.sha256);
  });
});

/** Inserts a story with a short prompt, then gives it `prompt` before its job is claimed (insertStory keeps case files within 1000 bytes). */
async function runWithPrompt(prompt: string) {
  stack.setEnv({ PORTRAIT_MAX_CONCURRENCY: "1" });
  const blocker = await stack.t.mutation(internal.stories.insertStory, caseFile({ slug: "blocker" }));
  const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
  await stack.t.run((ctx) => ctx.db.patch(storyId, { imageGenerationPrompt: prompt }));
  await settle(stack.t);
  expect((await jobOf(stack.t, blocker)).status).toBe("stored");
  const job = await jobOf(stack.t, storyId);
  return { job, path: await pathOf(stack.t, job!._id) };
}

describe("the request follows RECRAFT_MODEL", () => {
  const long = `A gaunt patient under a flickering ward lamp, ${"every detail of the peeling walls described, ".repeat(70)}`.slice(0, 3000);

  test("a 3000-character prompt is sent to a V4 model", async () => {
    expect(long).toHaveLength(3000);
    stack.setEnv({ RECRAFT_MODEL: "recraftv4" });
    const { job, path } = await runWithPrompt(long);
    expect(path).toBe("pending>requested>downloaded>stored");
    expect(job!.status).toBe("stored");
    const request = stack.recraft.requests.at(-1)!;
    expect(request.prompt).toBe(long);
    expect(request.validationErrors).toEqual([]);
  });

  test("the same prompt is refused as prompt_too_long for recraftv3, before any request", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv3" });
    const { job, path } = await runWithPrompt(long);
    expect(path).toBe("pending>failed");
    expect(job!.error).toMatchObject({ step: "validate", code: "prompt_too_long" });
    expect(job!.error!.message).toMatch(/3000 UTF-8 bytes; recraftv3 accepts at most 1000/);
    expect(stack.recraft.requests.map((r) => r.prompt)).toEqual([caseFile().imageGenerationPrompt]); // the blocker's only
    await expectInvariants(stack.t);
  });

  test("a V4 model counts characters, not bytes, up to 10,000", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv4_1" });
    const { job, path } = await runWithPrompt("é".repeat(10_001));
    expect(path).toBe("pending>failed");
    expect(job!.error!.message).toMatch(/10001 characters; recraftv4_1 accepts at most 10000/);
  });

  test.each(RECRAFT_MODELS.map((m) => [m.id, m] as const))(
    "%s: the request carries only what the model accepts and passes the fake's schema",
    async (id, model) => {
      stack.setEnv({ RECRAFT_MODEL: id, RECRAFT_SIZE: model.sizes[0] });
      const { path } = await runOne();
      expect(path).toBe("pending>requested>downloaded>stored");
      const [request] = stack.recraft.requests;
      expect(request!.validationErrors).toEqual([]);
      expect(request!.body).toEqual({
        prompt: caseFile().imageGenerationPrompt,
        model: id,
        ...(model.styles ? { style: model.styles.default } : {}),
        size: model.sizes[0],
        n: 1,
        response_format: "url",
      });
    },
  );

  const GAME_STYLE_ID = "1f9a9d70-2d71-4b85-9106-646bbddf1fd0";

  test("the game's request: RECRAFT_MODEL=recraftv2, RECRAFT_STYLE_ID, RECRAFT_SIZE=1024x1536 send style_id and no style", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv2", RECRAFT_STYLE_ID: GAME_STYLE_ID, RECRAFT_SIZE: "1024x1536" });
    const { path } = await runOne();
    expect(path).toBe("pending>requested>downloaded>stored");
    const [request] = stack.recraft.requests;
    expect(request!.validationErrors).toEqual([]);
    expect(request!.body).toEqual({
      prompt: caseFile().imageGenerationPrompt,
      model: "recraftv2",
      style_id: GAME_STYLE_ID,
      size: "1024x1536",
      n: 1,
      response_format: "url",
    });
  });

  test.each(RECRAFT_MODELS.map((m) => [m.id, m] as const))(
    "%s takes RECRAFT_STYLE_ID as style_id alone, and the fake's schema accepts it",
    async (id, model) => {
      stack.setEnv({ RECRAFT_MODEL: id, RECRAFT_SIZE: model.sizes[0], RECRAFT_STYLE_ID: GAME_STYLE_ID });
      const { path } = await runOne();
      expect(path).toBe("pending>requested>downloaded>stored");
      const [request] = stack.recraft.requests;
      expect(request!.validationErrors).toEqual([]);
      expect(request!.body).toMatchObject({ model: id, style_id: GAME_STYLE_ID });
      expect(request!.body).not.toHaveProperty("style");
    },
  );

  test("by default: the default model, no style, 1024x1024", async () => {
    stack.setEnv({ RECRAFT_MODEL: undefined, RECRAFT_STYLE: undefined, RECRAFT_SIZE: undefined });
    await runOne();
    expect(stack.recraft.requests[0]!.body).toMatchObject({ model: DEFAULT_RECRAFT_MODEL, size: "1024x1024" });
    expect(stack.recraft.requests[0]!.body).not.toHaveProperty("style");
    expect(stack.recraft.requests[0]!.validationErrors).toEqual([]);
  });
});

describe("a bad model configuration fails the job at the claim with bad_config and makes no request", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["an unknown model", { RECRAFT_MODEL: "recraftv9" }, /RECRAFT_MODEL=recraftv9 is not a Recraft raster model/],
    ["a vector model", { RECRAFT_MODEL: "recraftv4_1_vector" }, /RECRAFT_MODEL=recraftv4_1_vector/],
    [
      "a style for a model that takes none",
      { RECRAFT_MODEL: "recraftv4_1", RECRAFT_STYLE: "realistic_image" },
      /RECRAFT_STYLE=realistic_image .* recraftv4_1 takes no style/,
    ],
    [
      "a style the model does not have",
      { RECRAFT_MODEL: "recraftv3", RECRAFT_STYLE: "vector_illustration" },
      /RECRAFT_STYLE=vector_illustration is not a raster style recraftv3 accepts/,
    ],
    [
      "a size the model does not paint",
      { RECRAFT_MODEL: "recraftv4_1", RECRAFT_SIZE: "2048x2048" },
      /RECRAFT_SIZE=2048x2048 is not a size recraftv4_1 accepts/,
    ],
    [
      "both RECRAFT_STYLE and RECRAFT_STYLE_ID",
      { RECRAFT_MODEL: "recraftv2", RECRAFT_STYLE: "realistic_image", RECRAFT_STYLE_ID: "1f9a9d70-2d71-4b85-9106-646bbddf1fd0" },
      /RECRAFT_STYLE=realistic_image and RECRAFT_STYLE_ID are both set/,
    ],
    [
      "a RECRAFT_STYLE_ID that is not a UUID",
      { RECRAFT_MODEL: "recraftv2", RECRAFT_STYLE_ID: "my-horror-style" },
      /RECRAFT_STYLE_ID=my-horror-style is not a UUID/,
    ],
  ];

  test.each(cases)("%s", async (_name, env, message) => {
    stack.setEnv(env);
    const { job, path } = await runOne();
    expect(path).toBe("pending>failed");
    expect(job!.error).toMatchObject({ step: "validate", code: "bad_config" });
    expect(job!.error!.message).toMatch(message);
    expect(stack.recraft.requests).toHaveLength(0);
    await expectInvariants(stack.t);
  });

  test("fixed, the job goes through on a retry", async () => {
    stack.setEnv({ RECRAFT_MODEL: "recraftv9" });
    const { job } = await runOne();
    stack.setEnv({ RECRAFT_MODEL: "recraftv4_1" });
    expect(await stack.t.mutation(internal.portraits.retryFailedByCode, { code: "bad_config" })).toBe(1);
    await settle(stack.t);
    expect((await jobOf(stack.t, job!.storyId)).status).toBe("stored");
  });
});

describe("numeric settings are clamped to what the platform and the SDK accept", () => {
  /** The logger's lines, as the messages of its WARN lines from the config module (anything else fails the test). */
  function warnings() {
    const lines = captureLogs();
    return {
      get length() {
        return lines.length;
      },
      messages: () =>
        lines.map((line) => {
          const parsed = JSON.parse(line);
          expect(parsed).toMatchObject({ level: "WARN", source: "config" });
          return `config: ${parsed.message}`;
        }),
    };
  }

  const clamps: [string, string, () => number, number][] = [
    ["PORTRAIT_REQUEST_TIMEOUT_MS", "900000", () => recraftConfig().requestTimeoutMs, 300_000],
    ["PORTRAIT_COMPRESS_TIMEOUT_MS", "900000", () => tinifyConfig().timeoutMs, 60_000],
    ["PORTRAIT_MAX_SIDE", "100000", () => tinifyConfig().maxSide, 8192],
    ["PORTRAIT_DOWNLOAD_TIMEOUT_MS", "900000", () => recraftConfig().downloadTimeoutMs, 180_000],
    ["PORTRAIT_MAX_BYTES", String(100 * 1024 * 1024), () => recraftConfig().maxBytes, MAX_IMAGE_BYTES],
    ["PORTRAIT_MAX_CONCURRENCY", "5000", () => queueConfig().maxConcurrency, 1000],
    ["PORTRAIT_MAX_PER_MINUTE", "1000000", () => queueConfig().maxPerMinute, 8192],
    ["PORTRAIT_MAX_ATTEMPTS", "99", () => queueConfig().maxAttempts, 10],
    ["PORTRAIT_STALL_MS", String(7 * 24 * 3600_000), () => queueConfig().stallMs, 24 * 3600_000],
    ["PORTRAIT_RETRY_INITIAL_MS", String(24 * 3600_000), () => queueConfig().retryInitialMs, 3600_000],
    ["PORTRAIT_RETRY_MAX_MS", String(7 * 24 * 3600_000), () => queueConfig().retryMaxMs, 24 * 3600_000],
    ["STORY_MAX_TOKENS", "64000", () => storyConfig().maxTokens, MAX_NONSTREAMING_TOKENS],
    ["STORY_MAX_TOKENS", "10", () => storyConfig().maxTokens, 1024],
    ["PORTRAIT_MAX_CONCURRENCY", "0", () => queueConfig().maxConcurrency, 1],
  ];

  test.each(clamps)("%s=%s is clamped, with a warning naming it", (name, value, read, expected) => {
    const lines = warnings();
    stack.setEnv({ [name]: value });
    expect(read()).toBe(expected);
    expect(lines).toHaveLength(1);
    expect(lines.messages()[0]).toMatch(new RegExp(`^config: ${name}=${value} is outside \\d+\\.\\.\\d+; using ${expected}$`));
  });

  test("a malformed number falls back to its default, with a warning naming it", () => {
    const lines = warnings();
    stack.setEnv({ PORTRAIT_MAX_CONCURRENCY: "four" });
    expect(queueConfig().maxConcurrency).toBe(DEFAULT_MAX_CONCURRENCY);
    expect(lines.messages()).toEqual([
      `config: PORTRAIT_MAX_CONCURRENCY="four" is not an integer; using the default ${DEFAULT_MAX_CONCURRENCY}`,
    ]);
  });

  test("a value in range is taken as is, silently", () => {
    const lines = warnings();
    stack.setEnv({ PORTRAIT_MAX_CONCURRENCY: "64", STORY_MAX_TOKENS: String(MAX_NONSTREAMING_TOKENS) });
    expect(queueConfig().maxConcurrency).toBe(64);
    expect(storyConfig().maxTokens).toBe(MAX_NONSTREAMING_TOKENS);
    expect(lines.messages()).toEqual([]);
  });

  test("the largest timeouts (request, download, compression) leave an attempt a minute inside Convex's 10-minute action limit", () => {
    stack.setEnv({
      PORTRAIT_REQUEST_TIMEOUT_MS: "99999999",
      PORTRAIT_DOWNLOAD_TIMEOUT_MS: "99999999",
      PORTRAIT_COMPRESS_TIMEOUT_MS: "99999999",
    });
    warnings();
    const { requestTimeoutMs, downloadTimeoutMs } = recraftConfig();
    expect(requestTimeoutMs + downloadTimeoutMs + tinifyConfig().timeoutMs).toBeLessThanOrEqual(ACTION_LIMIT_MS - 60_000);
  });

  test("the real Anthropic SDK sends STORY_MAX_TOKENS' maximum without streaming and refuses one more", async () => {
    const client = new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY, baseURL: process.env.ANTHROPIC_BASE_URL, maxRetries: 0 });
    // The SDK throws its refusal synchronously; an async wrapper turns it into a rejection.
    const request = async (maxTokens: number) =>
      client.messages.create({ model: "claude-sonnet-4-5", max_tokens: maxTokens, messages: [{ role: "user", content: "hello" }] });
    const before = stack.anthropic.requests.length;
    await expect(request(MAX_NONSTREAMING_TOKENS)).resolves.toHaveProperty("content");
    expect(stack.anthropic.requests.length).toBe(before + 1);
    await expect(request(MAX_NONSTREAMING_TOKENS + 1)).rejects.toThrow(/Streaming is required/);
    expect(stack.anthropic.requests.length).toBe(before + 1); // refused before anything was sent
  });
});
