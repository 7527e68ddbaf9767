import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodePngRgba, decodePngSize, encodePng, portraitPng } from "../../scripts/fakes/png.ts";
import { fitWithin, startTinifyServer, type FakeTinify } from "../../scripts/fakes/tinifyServer.ts";

let srv: FakeTinify;
beforeEach(async () => {
  srv = await startTinifyServer({ apiKey: "tiny-key" });
});
afterEach(async () => {
  await srv.close();
});

const basic = (key: string) => `Basic ${Buffer.from(`api:${key}`).toString("base64")}`;

function shrink(body: Uint8Array | string, key: string | null = "tiny-key") {
  return fetch(`${srv.url}/shrink`, { method: "POST", headers: key === null ? {} : { authorization: basic(key) }, body: body as BodyInit });
}

type ShrinkAnswer = {
  input: { size: number; type: string };
  output: { size: number; type: string; width: number; height: number; ratio: number; url: string };
};

describe("POST /shrink", () => {
  it("answers 201 with a Location on its own host, the documented JSON and Compression-Count", async () => {
    const png = portraitPng("a patient", 64);
    const res = await shrink(png);
    expect(res.status).toBe(201);
    const json = (await res.json()) as ShrinkAnswer;
    expect(res.headers.get("location")).toBe(json.output.url);
    expect(new URL(json.output.url).host).toBe(new URL(srv.url).host);
    expect(json.input).toEqual({ size: png.length, type: "image/png" });
    expect(json.output).toMatchObject({ type: "image/png", width: 64, height: 64 });
    expect(json.output.size).toBeLessThan(png.length);
    expect(json.output.ratio).toBeCloseTo(json.output.size / png.length, 3);
    expect(res.headers.get("compression-count")).toBe("1");
    expect(srv.compressionCount).toBe(1);
  });

  it("refuses a missing or wrong key with 401 and the documented error body", async () => {
    for (const key of [null, "wrong"]) {
      const res = await shrink(portraitPng("x"), key);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "Unauthorized", message: "Credentials are invalid." });
    }
    expect(srv.compressionCount).toBe(0);
  });

  it("refuses what is not an image (415) and an empty body (400)", async () => {
    const text = await shrink("<html></html>");
    expect(text.status).toBe(415);
    expect(((await text.json()) as { error: string }).error).toBe("Unsupported media type");
    expect((await shrink(new Uint8Array(0))).status).toBe(400);
  });

  it("accepts JPEG and WebP signatures and returns them as they came", async () => {
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 1, 2, 3);
    const res = await shrink(jpeg);
    expect(res.status).toBe(201);
    const { output } = (await res.json()) as ShrinkAnswer;
    const bytes = new Uint8Array(await (await fetch(output.url)).arrayBuffer());
    expect([...bytes]).toEqual([...jpeg]);
    const webp = new Uint8Array([...Buffer.from("RIFF"), 0, 0, 0, 0, ...Buffer.from("WEBP")]);
    expect((await shrink(webp)).status).toBe(201);
  });
});

describe("the output URL", () => {
  async function outputUrl() {
    return ((await (await shrink(portraitPng("a patient", 64))).json()) as ShrinkAnswer).output.url;
  }

  it("resizes with fit to within both bounds, never enlarging, and reports the size in headers", async () => {
    const url = await outputUrl();
    const post = (resize: unknown, key = "tiny-key") =>
      fetch(url, {
        method: "POST",
        headers: { authorization: basic(key), "content-type": "application/json" },
        body: JSON.stringify({ resize }),
      });
    const small = await post({ method: "fit", width: 32, height: 48 });
    expect(small.status).toBe(200);
    expect(small.headers.get("content-type")).toBe("image/png");
    expect([small.headers.get("image-width"), small.headers.get("image-height")]).toEqual(["32", "32"]);
    expect(decodePngSize(new Uint8Array(await small.arrayBuffer()))).toEqual({ width: 32, height: 32 });
    const big = await post({ method: "fit", width: 1024, height: 1024 });
    expect(decodePngSize(new Uint8Array(await big.arrayBuffer()))).toEqual({ width: 64, height: 64 });
    expect((await post({ method: "fit", width: 32 })).status).toBe(400); // fit needs both
    expect((await post({ method: "stretch", width: 32, height: 32 })).status).toBe(400);
    expect((await post({ method: "fit", width: 32, height: 32 }, "wrong")).status).toBe(401);
  });

  it("the compressed image is the same picture: its mean colour is within a few levels of the original's", async () => {
    const original = portraitPng("a patient", 64);
    const { output } = (await (await shrink(original)).json()) as ShrinkAnswer;
    const compressed = decodePngRgba(new Uint8Array(await (await fetch(output.url)).arrayBuffer()))!;
    const mean = (rgba: Uint8Array, c: number) => rgba.filter((_, i) => i % 4 === c).reduce((a, b) => a + b, 0) / (rgba.length / 4);
    const source = decodePngRgba(original)!;
    for (let c = 0; c < 3; c++) expect(Math.abs(mean(compressed.rgba, c) - mean(source.rgba, c))).toBeLessThan(9);
  });

  it("decodePngRgba reads back what encodePng wrote", () => {
    const rgba = Uint8Array.from({ length: 5 * 3 * 4 }, (_, i) => (i * 37) % 256);
    expect(decodePngRgba(encodePng(5, 3, rgba))).toEqual({ width: 5, height: 3, rgba });
  });

  it("serves the compressed image to a plain GET", async () => {
    const res = await fetch(await outputUrl());
    expect(res.status).toBe(200);
    expect(decodePngSize(new Uint8Array(await res.arrayBuffer()))).toEqual({ width: 64, height: 64 });
  });

  it("fitWithin keeps the aspect ratio: the game's 1024x1536 fits 1024 as 683x1024", () => {
    expect(fitWithin({ width: 1024, height: 1536 }, 1024, 1024)).toEqual({ width: 683, height: 1024 });
    expect(fitWithin({ width: 2048, height: 1024 }, 1024, 1024)).toEqual({ width: 1024, height: 512 });
  });
});

describe("faults", () => {
  it("a status fault answers that status with a JSON error body", async () => {
    srv.setFault({ kind: "status", status: 429, error: "Too many requests", message: "Your monthly limit has been exceeded" });
    const res = await shrink(portraitPng("x"));
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual({ error: "Too many requests", message: "Your monthly limit has been exceeded" });
  });

  it("a foreign Location points the output elsewhere", async () => {
    srv.setFault({ kind: "foreignLocation", location: "https://elsewhere.test/output/x" });
    const res = await shrink(portraitPng("x"));
    expect(res.headers.get("location")).toBe("https://elsewhere.test/output/x");
  });

  it("a hang answers nothing until the server closes", async () => {
    srv.setFault({ kind: "hang" });
    const pending = shrink(portraitPng("x")).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(srv.requests[0]!.status).toBeUndefined();
    await srv.close();
    expect(await pending).toBeInstanceOf(Error);
    srv = await startTinifyServer();
  });

  it("echoKey puts the Authorization header it was sent into the error message", async () => {
    srv.setFault({ kind: "echoKey" });
    const res = await shrink(portraitPng("x"));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toContain(basic("tiny-key"));
  });
});
