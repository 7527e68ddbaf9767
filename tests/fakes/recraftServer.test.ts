import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodePngSize, encodePng, portraitPng } from "../../scripts/fakes/png.ts";
import { startRecraftServer, type FakeRecraft } from "../../scripts/fakes/recraftServer.ts";
import { until } from "../harness.ts";

let srv: FakeRecraft;
beforeEach(async () => {
  srv = await startRecraftServer();
});
afterEach(async () => {
  await srv.close();
});

const KEY = "test-recraft-key";

function generate(body: unknown, init: { key?: string | null; contentType?: string; signal?: AbortSignal } = {}) {
  const headers: Record<string, string> = { "content-type": init.contentType ?? "application/json" };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? KEY}`;
  return fetch(`${srv.url}/images/generations`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

async function generateUrl(prompt: string): Promise<string> {
  const res = await generate({ prompt, size: "1024x1024" });
  expect(res.status).toBe(200);
  const json = (await res.json()) as { data: { url: string }[] };
  return json.data[0]!.url;
}

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

const waitFor = (condition: () => boolean) => until(condition, { timeoutMs: 2000, pollMs: 10, message: "the fake's state" });

describe("png", () => {
  it("encodes a PNG whose IHDR decodes, and rejects garbage", () => {
    const png = encodePng(3, 2, new Uint8Array(3 * 2 * 4).fill(200));
    expect(decodePngSize(png)).toEqual({ width: 3, height: 2 });
    expect(decodePngSize(new TextEncoder().encode("<html>not a png at all, really not</html>"))).toBeNull();
    const corrupt = png.slice();
    corrupt[17]! ^= 0xff; // width byte: IHDR CRC no longer matches
    expect(decodePngSize(corrupt)).toBeNull();
    expect(() => encodePng(2, 2, new Uint8Array(3))).toThrow();
  });

  it("paints deterministic, prompt-dependent portraits", () => {
    expect(portraitPng("a")).toEqual(portraitPng("a"));
    expect(portraitPng("a")).not.toEqual(portraitPng("b"));
    expect(decodePngSize(portraitPng("a", 256))).toEqual({ width: 256, height: 256 });
  });
});

describe("generation", () => {
  it("answers a valid request with a downloadable PNG that depends on the prompt", async () => {
    const res = await generate({ prompt: "pale patient, ward 9", model: "recraftv3", style: "realistic_image", size: "1024x1024", n: 1 });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-recraft-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    const json = (await res.json()) as { created: number; credits: number; data: { image_id: string; url: string }[] };
    expect(json.credits).toBe(1);
    expect(Math.abs(json.created - Date.now() / 1000)).toBeLessThan(5);
    expect(json.data).toHaveLength(1);
    expect(json.data[0]!.url).toBe(`${srv.origin}/images/${json.data[0]!.image_id}.png`);
    expect(new URL(json.data[0]!.url).hostname).toBe(srv.imageHost);

    const img = await fetch(json.data[0]!.url);
    expect(img.headers.get("content-type")).toBe("image/png");
    const a = await bytesOf(img);
    expect(img.headers.get("content-length")).toBe(String(a.length));
    expect(decodePngSize(a)).toEqual({ width: 64, height: 64 });
    const b = await bytesOf(await fetch(await generateUrl("another patient")));
    expect(decodePngSize(b)).not.toBeNull();
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);

    const rec = srv.requests[0];
    expect(rec!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(rec!.prompt).toBe("pale patient, ward 9");
    expect(rec!.validationErrors).toEqual([]);
    expect(rec!.status).toBe(200);
    expect(rec!.requestId).toBe(res.headers.get("x-recraft-requestid"));
    expect(srv.imageRequests.map((r) => r.imageId)).toContain(json.data[0]!.image_id);
  });

  it("rejects a wrongly typed field with 400 and records the error", async () => {
    const res = await generate({ prompt: "x", size: "999x1" });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { code: string; message: string };
    expect(json.code).toBe("invalid_request");
    expect(json.message).toContain("/size");
    expect(srv.requests[0]!.validationErrors.join()).toContain("/size");
    expect(srv.requests[0]!.status).toBe(400);
  });

  it("rejects unknown properties, a missing prompt, bad JSON and a non-JSON content type", async () => {
    const unknown = await generate({ prompt: "x", promt_typo: "y" });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toContain("promt_typo");
    expect(srv.requests[0]!.validationErrors.join()).toContain("promt_typo");

    expect((await generate({ model: "recraftv3", style: "realistic_image" })).status).toBe(400);
    expect(srv.requests[1]!.validationErrors.join()).toContain("prompt");
    expect((await generate("{not json")).status).toBe(400);
    expect(srv.requests[2]!.body).toBe("{not json");
    expect((await generate({ prompt: "x" }, { contentType: "text/plain" })).status).toBe(400);
    // The allOf extension's property is allowed.
    expect((await generate({ prompt: "x", style_reference_urls: ["https://a/b.png"] })).status).toBe(200);
  });

  it("checks each model's own rules: V4 takes no style and 10,000 characters, V2/V3 take 1000 bytes, sizes per model", async () => {
    const refused = async (body: Record<string, unknown>, message: RegExp) => {
      const res = await generate(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(message);
    };
    await refused({ prompt: "x", model: "recraftv4_1", style: "realistic_image" }, /'style' is not accepted by recraftv4_1/);
    await refused({ prompt: "x", style: "realistic_image" }, /'style' is not accepted by recraftv4_1/); // Recraft's default model
    await refused({ prompt: "x", model: "recraftv4_pro", size: "1024x1024" }, /size 1024x1024 is not supported by recraftv4_pro/);
    await refused({ prompt: "x", model: "recraftv3", size: "1536x768" }, /size 1536x768 is not supported by recraftv3/);
    await refused({ prompt: "é".repeat(501), model: "recraftv3" }, /1002 bytes; recraftv3 accepts at most 1000/);
    await refused({ prompt: "x".repeat(10_001), model: "recraftv4" }, /10001 characters; recraftv4 accepts at most 10000/);
    await refused({ prompt: "x", model: "recraftv4_styles" }, /requires style_id/);
    expect((await generate({ prompt: "é".repeat(3000), model: "recraftv4_1_raster", size: "1024x1024" })).status).toBe(200);
    expect((await generate({ prompt: "x", model: "recraftv4_1_pro", size: "2048x2048" })).status).toBe(200);
    expect((await generate({ prompt: "x", model: "recraftv2", style: "digital_illustration", size: "1024x1365" })).status).toBe(200);
  });

  it("takes style_id as the OpenAPI document types it: a UUID, for V2 and V4 alike", async () => {
    const styleId = "1f9a9d70-2d71-4b85-9106-646bbddf1fd0";
    expect((await generate({ prompt: "x", model: "recraftv2", style_id: styleId, size: "1024x1536" })).status).toBe(200);
    expect((await generate({ prompt: "x", model: "recraftv4_1", style_id: styleId })).status).toBe(200);
    const notUuid = await generate({ prompt: "x", model: "recraftv2", style_id: "my-style" });
    expect(notUuid.status).toBe(400);
    expect(srv.requests[2]!.validationErrors.join()).toContain("/style_id");
  });

  it("requires the bearer key", async () => {
    for (const key of [null, "wrong"]) {
      const res = await generate({ prompt: "x" }, { key });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("not_authorized");
    }
    expect(srv.requests[0]!.headers.authorization).toBeUndefined();
    expect(srv.requests[1]!.headers.authorization).toBe("Bearer wrong");
  });

  it("applies latency and tracks concurrency on the timeline", async () => {
    await srv.close();
    srv = await startRecraftServer({ latencyMs: (p) => (p === "slow" ? 150 : 100) });
    const t0 = Date.now();
    const all = await Promise.all(["slow", "a", "b", "c", "d"].map((prompt) => generate({ prompt })));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(srv.maxInFlight).toBe(5);
    await waitFor(() => srv.inFlight === 0);
    expect(srv.timeline).toHaveLength(5);
    const latestStart = Math.max(...srv.timeline.map((s) => s.start));
    const earliestEnd = Math.min(...srv.timeline.map((s) => s.end!));
    expect(latestStart).toBeLessThan(earliestEnd); // all five overlapped
    srv.reset();
    expect([srv.requests.length, srv.timeline.length, srv.maxInFlight]).toEqual([0, 0, 0]);
  });

  it("uses the paint, apiKey and credits options and serves b64_json", async () => {
    await srv.close();
    const tiny = encodePng(1, 1, Uint8Array.of(1, 2, 3, 255));
    srv = await startRecraftServer({ apiKey: "k2", credits: 7, paint: () => tiny });
    const res = await generate({ prompt: "x", response_format: "b64_json" }, { key: "k2" });
    const json = (await res.json()) as { credits: number; data: { b64_json: string; url?: string }[] };
    expect(json.credits).toBe(7);
    expect(json.data[0]!.url).toBeUndefined();
    expect(decodePngSize(Buffer.from(json.data[0]!.b64_json, "base64"))).toEqual({ width: 1, height: 1 });
  });
});

describe("generation faults", () => {
  it("status: 429 with headers, 500 text, 503 JSON", async () => {
    srv.setFault({ kind: "status", status: 429, json: { code: "rate_limited" }, headers: { "retry-after": "2" } });
    const r429 = await generate({ prompt: "x" });
    expect([r429.status, r429.headers.get("retry-after")]).toEqual([429, "2"]);
    expect(await r429.json()).toEqual({ code: "rate_limited" });

    srv.setFault({ kind: "status", status: 500, body: "upstream exploded" });
    const r500 = await generate({ prompt: "x" });
    expect([r500.status, await r500.text()]).toEqual([500, "upstream exploded"]);

    srv.setFault({ kind: "status", status: 503, json: { code: "unavailable" } });
    const r503 = await generate({ prompt: "x" });
    expect(r503.headers.get("content-type")).toBe("application/json");
    expect(srv.requests.map((r) => [r.fault, r.status])).toEqual([
      ["status", 429],
      ["status", 500],
      ["status", 503],
    ]);
  });

  it("a picker chooses faults per request index and prompt", async () => {
    srv.setFault(({ index, prompt }) => (index === 0 || prompt === "bad" ? { kind: "status", status: 500 } : undefined));
    expect((await generate({ prompt: "x" })).status).toBe(500);
    expect((await generate({ prompt: "x" })).status).toBe(200);
    expect((await generate({ prompt: "bad" })).status).toBe(500);
    expect(srv.requests.map((r) => r.index)).toEqual([0, 1, 2]);
  });

  it("still validates while a fault is set", async () => {
    srv.setFault({ kind: "hang" });
    expect((await generate({ prompt: 1 })).status).toBe(400);
    expect(srv.requests[0]!.fault).toBeUndefined();
  });

  it("hang: never answers until the client aborts", async () => {
    srv.setFault({ kind: "hang" });
    await expect(generate({ prompt: "x" }, { signal: AbortSignal.timeout(150) })).rejects.toThrow(/timeout|aborted/i);
    await waitFor(() => srv.inFlight === 0);
    expect(srv.timeline[0]!.end).toBeDefined();
    expect(srv.requests[0]!.status).toBeUndefined();
  });

  it("malformedJson, emptyData, noUrl, imageUrl", async () => {
    srv.setFault({ kind: "malformedJson" });
    const bad = await generate({ prompt: "x" });
    expect(bad.status).toBe(200);
    await expect(bad.json()).rejects.toThrow();

    srv.setFault({ kind: "emptyData" });
    expect(((await (await generate({ prompt: "x" })).json()) as { data: unknown[] }).data).toEqual([]);

    srv.setFault({ kind: "noUrl" });
    const [item] = ((await (await generate({ prompt: "x" })).json()) as { data: Record<string, unknown>[] }).data;
    expect(item!.image_id).toBeTypeOf("string");
    expect(item!.url).toBeUndefined();
    expect(item!.b64_json).toBeUndefined();

    for (const url of ["file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", "https://evil.example/x.png"]) {
      srv.setFault({ kind: "imageUrl", url });
      const json = (await (await generate({ prompt: "x" })).json()) as { data: { url: string }[] };
      expect(json.data[0]!.url).toBe(url);
    }
  });

  it("echoKey: 401 body echoes the Authorization header", async () => {
    srv.setFault({ kind: "echoKey" });
    const res = await generate({ prompt: "x" });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain(`Bearer ${KEY}`);
  });

  it("reset: the connection is destroyed without an answer", async () => {
    srv.setFault({ kind: "reset" });
    await expect(generate({ prompt: "x" })).rejects.toThrow();
    expect(srv.requests[0]!.fault).toBe("reset");
  });
});

describe("image faults", () => {
  it("imageStatus", async () => {
    srv.setFault({ kind: "imageStatus", status: 404, body: "gone" });
    const res = await fetch(await generateUrl("x"));
    expect([res.status, await res.text()]).toEqual([404, "gone"]);
    expect(srv.imageRequests[0]!.fault).toBe("imageStatus");
  });

  it("imageHang: aborted by the client's timeout", async () => {
    srv.setFault({ kind: "imageHang" });
    await expect(fetch(await generateUrl("x"), { signal: AbortSignal.timeout(150) })).rejects.toThrow();
  });

  it("imageSlowDrip: a valid PNG, slowly", async () => {
    srv.setFault({ kind: "imageSlowDrip", chunkBytes: 1024, intervalMs: 40 });
    const url = await generateUrl("x");
    const t0 = Date.now();
    const bytes = await bytesOf(await fetch(url));
    const chunks = Math.ceil(bytes.length / 1024);
    expect(Date.now() - t0).toBeGreaterThanOrEqual((chunks - 1) * 40 - 20);
    expect(decodePngSize(bytes)).toEqual({ width: 64, height: 64 });
  });

  it("imageSlowDrip can be cut short by the client", async () => {
    srv.setFault({ kind: "imageSlowDrip" }); // 16 bytes every 200 ms
    const res = await fetch(await generateUrl("x"), { signal: AbortSignal.timeout(300) });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it("imageReset and imageTruncated fail mid-body", async () => {
    for (const kind of ["imageReset", "imageTruncated"] as const) {
      srv.setFault({ kind });
      const res = await fetch(await generateUrl("x"));
      expect(res.status).toBe(200);
      expect(Number(res.headers.get("content-length"))).toBeGreaterThan(0);
      await expect(res.arrayBuffer()).rejects.toThrow();
    }
  });

  it("imageContentType", async () => {
    srv.setFault({ kind: "imageContentType", contentType: "text/html" });
    const res = await fetch(await generateUrl("x"));
    expect(res.headers.get("content-type")).toBe("text/html");
    expect(await res.text()).toContain("<html>");
  });

  it("imageOversize with Content-Length announces the size", async () => {
    srv.setFault({ kind: "imageOversize", bytes: 50_000_000, withContentLength: true });
    const res = await fetch(await generateUrl("x"));
    expect(res.headers.get("content-length")).toBe("50000000");
    await res.body!.cancel();
    await waitFor(() => srv.inFlight === 0 && srv.oversizeBytesSent > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.oversizeBytesSent).toBeLessThan(50_000_000 / 5);
  });

  it("imageOversize without Content-Length streams until the client cancels", async () => {
    const bytes = 1 << 30;
    srv.setFault({ kind: "imageOversize", bytes, withContentLength: false });
    const res = await fetch(await generateUrl("x"));
    expect(res.headers.get("content-length")).toBeNull();
    const reader = res.body!.getReader();
    let got = 0;
    let first: Uint8Array | undefined;
    while (got < 2_000_000) {
      const { value, done } = await reader.read();
      if (done) break;
      first ??= value;
      got += value.length;
    }
    await reader.cancel();
    expect(decodePngSize(first!)).not.toBeNull(); // starts like a PNG
    await new Promise((r) => setTimeout(r, 200));
    const sent = srv.oversizeBytesSent;
    expect(sent).toBeGreaterThanOrEqual(got);
    expect(sent).toBeLessThan(bytes / 20);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.oversizeBytesSent).toBe(sent); // stopped writing
  });

  it("imageEndless never ends until the client disconnects", async () => {
    srv.setFault({ kind: "imageEndless" });
    const res = await fetch(await generateUrl("x"));
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 1_000_000) got += (await reader.read()).value!.length;
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 150));
    const sent = srv.oversizeBytesSent;
    expect(sent).toBeGreaterThanOrEqual(got);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.oversizeBytesSent).toBe(sent);
  });

  it("imageRedirect: 302 to anywhere, or back to a real image on this server", async () => {
    srv.setFault({ kind: "imageRedirect", location: "http://169.254.169.254/latest/meta-data/" });
    const manual = await fetch(await generateUrl("x"), { redirect: "manual" });
    expect([manual.status, manual.headers.get("location")]).toEqual([302, "http://169.254.169.254/latest/meta-data/"]);

    srv.setFault(undefined);
    const real = await generateUrl("real");
    srv.setFault({ kind: "imageRedirect", location: real });
    const followed = await fetch(await generateUrl("x"));
    expect(followed.url).toBe(real);
    expect(decodePngSize(await bytesOf(followed))).not.toBeNull();

    srv.setFault({ kind: "imageRedirect", location: "{origin}/raw/{id}.png" });
    const self = await fetch(await generateUrl("y"));
    expect(self.status).toBe(200);
    expect(decodePngSize(await bytesOf(self))).not.toBeNull();
  });
});

describe("close", () => {
  it("returns promptly with hanging and dripping responses open", async () => {
    srv.setFault({ kind: "imageSlowDrip", intervalMs: 10_000 });
    const dripping = await fetch(await generateUrl("x"));
    srv.setFault({ kind: "hang" });
    const hanging = generate({ prompt: "x" }).catch((e: unknown) => e);
    await waitFor(() => srv.inFlight === 1 && srv.requests.length === 2);
    const t0 = Date.now();
    await srv.close();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await hanging).toBeInstanceOf(Error);
    await expect(dripping.arrayBuffer()).rejects.toThrow();
  });
});
