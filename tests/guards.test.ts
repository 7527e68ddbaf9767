/**
 * The small guards a mutation campaign (one realistic bug at a time in
 * convex/) found unpinned: each test here fails when its guard is weakened
 * the way the campaign weakened it. Queue and story-run behaviours are pinned
 * in the queue's own suites.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import { queueConfig } from "../convex/lib/config";
import { normalizeChapter, untypeable } from "../convex/lib/caseFile";
import { isAdmin } from "../convex/lib/adminFunctions";
import { checkImageUrl } from "../convex/lib/recraft";
import { promptLength, recraftModel } from "../convex/lib/recraftModels";
import { redact } from "../convex/lib/redact";
import { Sha256 } from "../convex/lib/sha256";
import { captureLogs, caseFile, jobOf, runPortrait, settle, startStack, type Stack } from "./harness";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  vi.restoreAllMocks();
});

/** Sets Convex environment variables for one test (restored by afterEach through the stack). */
async function withEnv(vars: Record<string, string | undefined>) {
  stack ??= await startStack();
  stack.setEnv(vars);
  return stack;
}

describe("typeability", () => {
  test("control characters are not typeable: tab and DEL are refused, not only what lies past DEL", () => {
    expect(untypeable("before\tafter")).toMatch(/"\\t" \(U\+0009\)/);
    expect(untypeable("before\x7Fafter")).toMatch(/U\+007F/);
    expect(untypeable("before\x1Fafter")).toMatch(/U\+001F/);
    expect(untypeable("The night nurse signs in ~ at 3:00 {sharp}.")).toBeNull();
  });

  test("every ellipsis is normalised, not just the first", () => {
    const { text, changed } = normalizeChapter("She waited\u2026 the lamp hummed\u2026 and the door\u2026 opened.");
    expect(text).toBe("She waited... the lamp hummed... and the door... opened.");
    expect(changed).toBe(true);
    expect(untypeable(text)).toBeNull();
  });

  test("every invisible character is dropped, the zero-width joiner included, and nothing next to it", () => {
    const invisible = ["\u00AD", "\u200B", "\u200C", "\u200D", "\u2060", "\uFEFF"];
    for (const mark of invisible) expect(normalizeChapter(`ward${mark}en${mark}${mark}s`)).toEqual({ text: "wardens", changed: true });
    expect(normalizeChapter("a\u200C\u200D\u2060b").text).toBe("ab");
    expect(untypeable("ward\u200Den")).not.toBeNull();
  });
});

describe("admin identities", () => {
  const issuer = "https://happy-otter-123.convex.site";

  test("a Convex Auth user id is matched whole, never as a prefix of a longer id", async () => {
    await withEnv({ CONVEX_SITE_URL: issuer, ADMIN_SUBJECTS: "k17warden42", ADMIN_EMAILS: undefined });
    expect(isAdmin({ issuer, subject: "k17warden42|session1", tokenIdentifier: `${issuer}|k17warden42|session1` })).toBe(true);
    expect(isAdmin({ issuer, subject: "k17warden420|session1", tokenIdentifier: `${issuer}|k17warden420|session1` })).toBe(false);
    expect(isAdmin({ issuer, subject: "k17warden4|session1", tokenIdentifier: `${issuer}|k17warden4|session1` })).toBe(false);
  });
});

describe("downloads", () => {
  test("a host that merely ends with a listed host is refused", () => {
    expect(checkImageUrl("https://img.recraft.ai/a.png", ["img.recraft.ai"])).toMatchObject({ ok: true });
    expect(checkImageUrl("https://evilimg.recraft.ai/a.png", ["img.recraft.ai"])).toMatchObject({
      ok: false,
      message: expect.stringMatching(/not in RECRAFT_IMAGE_HOSTS/),
    });
    expect(checkImageUrl("https://cdn.img.recraft.ai/a.png", ["img.recraft.ai"])).toMatchObject({ ok: false });
  });

  test("plain http: is refused for a listed host that is not loopback, and allowed for loopback", () => {
    expect(checkImageUrl("http://img.recraft.ai/a.png", ["img.recraft.ai"])).toMatchObject({
      ok: false,
      message: expect.stringMatching(/scheme http: is not allowed/),
    });
    expect(checkImageUrl("http://127.0.0.1:8080/a.png", ["127.0.0.1"])).toMatchObject({ ok: true });
    expect(checkImageUrl("http://localhost:8080/a.png", ["localhost"])).toMatchObject({ ok: true });
  });

  test("an image answered without a content-type is refused as bad_content_type", async () => {
    stack = await startStack();
    stack.recraft.setFault({ kind: "imageContentType", contentType: null });
    const { job, path } = await runPortrait(stack.t);
    expect(path).toBe("pending>requested>failed");
    expect(job!.error).toMatchObject({ step: "download", code: "bad_content_type", message: expect.stringMatching(/\(none\)/) });
  });

  test("a zero-byte image is refused as bad_response and nothing is stored", async () => {
    stack = await startStack();
    stack.recraft.setFault({ kind: "imageContentType", contentType: "image/png", body: "" });
    const { job, path, storyId } = await runPortrait(stack.t);
    expect(path).toBe("pending>requested>failed");
    expect(job!.error).toMatchObject({ step: "download", code: "bad_response", message: "image body is empty" });
    expect(await stack.t.run((ctx) => ctx.db.system.query("_storage").collect())).toEqual([]);
    expect((await stack.t.run((ctx) => ctx.db.get(storyId)))!.storageId).toBeUndefined();
  });

  test("a prompt's length is counted in characters (code points), not UTF-16 units", async () => {
    const v4 = recraftModel("recraftv4")!;
    expect(v4.promptLimit.unit).toBe("characters");
    const eyes = "\u{1F441}".repeat(v4.promptLimit.max); // each eye is two UTF-16 units
    expect(promptLength(v4, eyes)).toBe(v4.promptLimit.max);
    // Through the pipeline: the longest prompt the model takes, in astral characters, is sent.
    stack = await startStack({ env: { RECRAFT_MODEL: "recraftv4", PORTRAIT_MAX_CONCURRENCY: "1" } });
    const blocker = await stack.t.mutation(internal.stories.insertStory, caseFile({ slug: "blocker" }));
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
    await stack.t.run((ctx) => ctx.db.patch(storyId, { imageGenerationPrompt: eyes }));
    await settle(stack.t);
    expect((await jobOf(stack.t, blocker)).status).toBe("stored");
    expect((await jobOf(stack.t, storyId)).status).toBe("stored");
    expect(stack.recraft.requests.at(-1)!.body).toMatchObject({ prompt: eyes });
  });
});

describe("secrets", () => {
  test("redact replaces every occurrence of a key, not only the first", async () => {
    await withEnv({ RECRAFT_API_KEY: "rk-echoed-twice-0123456789" });
    const text = "invalid key rk-echoed-twice-0123456789 (you sent rk-echoed-twice-0123456789)";
    expect(redact(text)).toBe("invalid key [redacted] (you sent [redacted])");
  });

  test("the Bearer scrub ignores case", () => {
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
      expect(redact(`Authorization: ${scheme} tok_unlisted_9f8e7d`)).toBe(`Authorization: ${scheme} [redacted]`);
    }
  });
});

describe("settings", () => {
  test("PORTRAIT_MAX_PER_SECOND=0 is clamped to 1 (a zero would make the slot spacing infinite), with a warning", async () => {
    await withEnv({ PORTRAIT_MAX_PER_SECOND: "0" });
    const lines = captureLogs();
    expect(queueConfig().maxPerSecond).toBe(1);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({
        level: "WARN",
        source: "config",
        event: "config.out_of_range",
        variable: "PORTRAIT_MAX_PER_SECOND",
        value: 0,
        using: 1,
      }),
    ]);
  });
});

describe("sha256", () => {
  const reference = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

  test("every length from 0 to 200 bytes hashes as node:crypto does (both padding boundaries, 55/56 and 119/120)", () => {
    const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let n = 0; n <= 200; n++) {
      expect(new Sha256().update(bytes.subarray(0, n)).hex(), `${n} bytes`).toBe(reference(bytes.subarray(0, n)));
    }
  });

  test("for any input of 0..600 bytes cut into any chunks, the incremental digest is node:crypto's", () => {
    const sizes: number[] = [];
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 600 })
          .chain((n) => fc.tuple(fc.uint8Array({ minLength: n, maxLength: n }), fc.array(fc.nat(130), { size: "max", maxLength: 12 }))),
        ([bytes, cuts]) => {
          sizes.push(bytes.length);
          const hash = new Sha256();
          let offset = 0;
          for (const cut of cuts) {
            hash.update(bytes.subarray(offset, offset + cut));
            offset = Math.min(bytes.length, offset + cut);
          }
          hash.update(bytes.subarray(offset));
          expect(hash.hex()).toBe(reference(bytes));
        },
      ),
      { numRuns: 300 },
    );
    // The property really reaches past both padding boundaries (fast-check's default size would stop at 10 bytes).
    expect(Math.max(...sizes)).toBeGreaterThan(130);
    expect(sizes.filter((n) => n > 64).length).toBeGreaterThan(100);
  });
});
