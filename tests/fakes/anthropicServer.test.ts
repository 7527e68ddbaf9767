import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CHAPTER_DIFFICULTIES, caseFiles, type CaseFile } from "../../scripts/caseFiles";
import { startAnthropicServer, type FakeAnthropic } from "../../scripts/fakes/anthropicServer";

const API_KEY = "test-anthropic-key";
const MODEL = "claude-sonnet-4-5";

const caseFileSchema: Anthropic.Tool.InputSchema = {
  type: "object",
  properties: {
    title: { type: "string" },
    slug: { type: "string" },
    introduction: { type: "string" },
    chapters: {
      type: "array",
      items: {
        type: "object",
        properties: { text: { type: "string" }, difficulty: { type: "string", enum: ["easy", "medium", "hard"] } },
        required: ["text", "difficulty"],
      },
    },
    patientName: { type: "string" },
    patientNumber: { type: "string" },
    story: { type: "string" },
    imageGenerationPrompt: { type: "string" },
  },
  required: ["title", "slug", "introduction", "chapters", "patientName", "patientNumber", "story", "imageGenerationPrompt"],
};

/** A forced-tool request, as earlier models were asked for a case file. */
function storyRequest(): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: MODEL,
    max_tokens: 4096,
    system: "You write horror case files for a typing game set in an abandoned asylum.",
    messages: [{ role: "user", content: "Write a new case file." }],
    tools: [
      {
        name: "record_case_file",
        description: "Record the finished case file.",
        input_schema: caseFileSchema,
      },
    ],
    tool_choice: { type: "tool", name: "record_case_file" },
  };
}

function client(fake: FakeAnthropic, options: Partial<ConstructorParameters<typeof Anthropic>[0]> = {}): Anthropic {
  return new Anthropic({ apiKey: API_KEY, baseURL: fake.url, ...options });
}

function toolInput(message: Anthropic.Message): unknown {
  const block = message.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
  return block?.input;
}

/** Returns the problems with a case file, [] when it is valid. */
function caseFileProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (typeof value !== "object" || value === null) return ["not an object"];
  const file = value as Partial<Record<keyof CaseFile, unknown>>;
  for (const field of ["title", "slug", "introduction", "patientName", "patientNumber", "story", "imageGenerationPrompt"] as const) {
    if (typeof file[field] !== "string" || (file[field] as string).trim() === "") problems.push(`${field} missing`);
  }
  if (typeof file.slug === "string" && !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(file.slug)) problems.push("slug not kebab-case");
  if (typeof file.patientNumber === "string" && !/^P-\d{4}$/.test(file.patientNumber)) problems.push("bad patientNumber");
  if (typeof file.imageGenerationPrompt === "string") {
    const bytes = Buffer.byteLength(file.imageGenerationPrompt, "utf8");
    if (bytes >= 1000) problems.push(`imageGenerationPrompt is ${bytes} bytes`);
  }
  if (!Array.isArray(file.chapters)) {
    problems.push("chapters missing");
  } else {
    const difficulties = file.chapters.map((c: unknown) =>
      typeof c === "object" && c !== null && "difficulty" in c ? (c as { difficulty: unknown }).difficulty : undefined,
    );
    if (JSON.stringify(difficulties) !== JSON.stringify(CHAPTER_DIFFICULTIES)) {
      problems.push(`chapters are ${JSON.stringify(difficulties)}`);
    }
    file.chapters.forEach((c: unknown, i) => {
      const text = typeof c === "object" && c !== null && "text" in c ? (c as { text: unknown }).text : undefined;
      if (typeof text !== "string" || text.trim() === "") problems.push(`chapter ${i} has no text`);
    });
  }
  return problems;
}

function sentenceCount(text: string): number {
  const withoutAbbreviations = text.replace(/\b(Dr|Mr|Mrs|Ms|Miss|St)\./g, "$1");
  return withoutAbbreviations.match(/[.!?]+['"]?(?=\s|$)/g)?.length ?? 0;
}

describe("bundled case files", () => {
  it("has at least 8 case files, each valid for the product", () => {
    expect(caseFiles.length).toBeGreaterThanOrEqual(8);
    for (const file of caseFiles) {
      expect(caseFileProblems(file), file.slug).toEqual([]);
      expect(file.chapters.filter((c) => c.difficulty === "easy")).toHaveLength(4);
      expect(file.chapters.filter((c) => c.difficulty === "medium")).toHaveLength(2);
      expect(file.chapters.filter((c) => c.difficulty === "hard")).toHaveLength(2);
    }
  });

  it("has distinct titles, slugs, patients and patient numbers", () => {
    for (const field of ["title", "slug", "patientName", "patientNumber"] as const) {
      const values = caseFiles.map((f) => f[field]);
      expect(new Set(values).size, field).toBe(values.length);
    }
  });

  it("has typeable chapters of 1-3 sentences and portrait prompts of 200-600 characters", () => {
    for (const file of caseFiles) {
      for (const [i, chapter] of file.chapters.entries()) {
        const label = `${file.slug} chapter ${i + 1}`;
        expect(chapter.text, label).toMatch(/^[\x20-\x7e]+$/);
        expect(sentenceCount(chapter.text), label).toBeGreaterThanOrEqual(1);
        expect(sentenceCount(chapter.text), label).toBeLessThanOrEqual(3);
      }
      for (const text of [file.title, file.introduction, file.story, file.imageGenerationPrompt]) {
        expect(text, file.slug).toMatch(/^[\x20-\x7e]+$/);
      }
      expect(file.imageGenerationPrompt.length, file.slug).toBeGreaterThanOrEqual(200);
      expect(file.imageGenerationPrompt.length, file.slug).toBeLessThanOrEqual(600);
      expect(file.introduction.length, file.slug).toBeLessThan(200);
      expect(file.story.length, file.slug).toBeGreaterThan(200);
    }
  });

  it("makes hard chapters longer than easy ones", () => {
    for (const file of caseFiles) {
      const average = (d: string) => {
        const texts = file.chapters.filter((c) => c.difficulty === d).map((c) => c.text.length);
        return texts.reduce((a, b) => a + b, 0) / texts.length;
      };
      expect(average("medium"), file.slug).toBeGreaterThan(average("easy"));
      expect(average("hard"), file.slug).toBeGreaterThan(average("medium"));
    }
  });
});

describe("fake Anthropic server with the real SDK", () => {
  let fake: FakeAnthropic;

  beforeAll(async () => {
    fake = await startAnthropicServer();
  });
  afterEach(() => {
    fake.reset();
  });
  afterAll(async () => {
    await fake.close();
  });

  it("answers a forced-tool request with every bundled case file in order, then cycles with unique slugs", async () => {
    const anthropic = client(fake);
    for (const expected of caseFiles) {
      const message = await anthropic.messages.create(storyRequest());
      expect(message.type).toBe("message");
      expect(message.role).toBe("assistant");
      expect(message.model).toBe(MODEL);
      expect(message.id).toMatch(/^msg_/);
      expect(message.stop_reason).toBe("tool_use");
      expect(message.usage.input_tokens).toBeGreaterThan(0);
      expect(message.usage.output_tokens).toBeGreaterThan(0);
      expect(message.content).toHaveLength(1);
      const block = message.content[0];
      expect(block!.type).toBe("tool_use");
      if (block!.type !== "tool_use") throw new Error("expected tool_use");
      expect(block.name).toBe("record_case_file");
      expect(block.id).toMatch(/^toolu_/);
      expect(caseFileProblems(block.input), expected.slug).toEqual([]);
      expect(block.input).toEqual(expected);
    }

    const slugs = new Set(caseFiles.map((f) => f.slug));
    for (let cycle = 2; cycle <= 3; cycle++) {
      for (const base of caseFiles) {
        const input = toolInput(await anthropic.messages.create(storyRequest())) as CaseFile;
        expect(caseFileProblems(input)).toEqual([]);
        expect(input.slug).toBe(`${base.slug}-${cycle}`);
        expect(input.patientName).toBe(base.patientName);
        expect(slugs.has(input.slug)).toBe(false);
        slugs.add(input.slug);
      }
    }
    expect(fake.servedCaseFiles).toHaveLength(caseFiles.length * 3);
    expect(fake.requests).toHaveLength(caseFiles.length * 3);
  });

  it("records each request's headers and body as the SDK sent them", async () => {
    await client(fake).messages.create(storyRequest());
    expect(fake.requests).toHaveLength(1);
    const [recorded] = fake.requests;
    expect(recorded!.method).toBe("POST");
    expect(recorded!.path).toBe("/v1/messages");
    expect(recorded!.headers["anthropic-version"]).toBeTruthy();
    expect(recorded!.headers["content-type"]).toContain("application/json");
    // @anthropic-ai/sdk 1.12.0 sends the API key as a bearer token.
    expect(recorded!.headers["authorization"] ?? `x-api-key ${recorded!.headers["x-api-key"]}`).toContain(API_KEY);
    expect(recorded!.body).toMatchObject({
      model: MODEL,
      max_tokens: 4096,
      tool_choice: { type: "tool", name: "record_case_file" },
      tools: [{ name: "record_case_file" }],
    });
    expect(recorded!.at).toBeLessThanOrEqual(Date.now());
  });

  it("is reachable through ANTHROPIC_BASE_URL", async () => {
    const previous = process.env.ANTHROPIC_BASE_URL;
    process.env.ANTHROPIC_BASE_URL = fake.url;
    try {
      const message = await new Anthropic({ apiKey: API_KEY }).messages.create(storyRequest());
      expect(message.stop_reason).toBe("tool_use");
      expect(fake.requests).toHaveLength(1);
    } finally {
      if (previous === undefined) delete process.env.ANTHROPIC_BASE_URL;
      else process.env.ANTHROPIC_BASE_URL = previous;
    }
  });

  it("accepts the key in an x-api-key header too", async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": API_KEY, "anthropic-version": "2023-06-01" },
      body: JSON.stringify(storyRequest()),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Anthropic.Message;
    expect(body.stop_reason).toBe("tool_use");
    expect(caseFileProblems(toolInput(body))).toEqual([]);
  });

  it("rejects a wrong key with an AuthenticationError, without retries", async () => {
    const error = await client(fake, { apiKey: "wrong-key" })
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).status).toBe(401);
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual({
      type: "error",
      error: { type: "authentication_error", message: "invalid x-api-key" },
    });
    expect(fake.requests).toHaveLength(1);
    expect(fake.servedCaseFiles).toHaveLength(0);
  });

  it("honours a custom apiKey option", async () => {
    const custom = await startAnthropicServer({ apiKey: "sk-custom" });
    try {
      const message = await new Anthropic({ apiKey: "sk-custom", baseURL: custom.url }).messages.create(storyRequest());
      expect(message.stop_reason).toBe("tool_use");
      await expect(
        new Anthropic({ apiKey: API_KEY, baseURL: custom.url, maxRetries: 0 }).messages.create(storyRequest()),
      ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    } finally {
      await custom.close();
    }
  });

  it("caseFile behavior answers with exactly the given (invalid) tool input", async () => {
    const sevenChapters = { ...caseFiles[0], chapters: caseFiles[0]!.chapters.slice(0, 7) };
    const longPrompt = { ...caseFiles[1], imageGenerationPrompt: "a dark and clinical portrait ".repeat(40) };
    const { title: _title, ...missingTitle } = caseFiles[2]!;
    const anthropic = client(fake);
    for (const invalid of [sevenChapters, longPrompt, missingTitle]) {
      fake.setBehavior({ kind: "caseFile", caseFile: invalid });
      const message = await anthropic.messages.create(storyRequest());
      expect(message.stop_reason).toBe("tool_use");
      expect(toolInput(message)).toEqual(invalid);
      expect(caseFileProblems(toolInput(message)).length).toBeGreaterThan(0);
    }
    expect(fake.servedCaseFiles).toHaveLength(0);
  });

  it("refusal behavior yields stop_reason refusal and no tool_use", async () => {
    fake.setBehavior({ kind: "refusal" });
    const message = await client(fake).messages.create(storyRequest());
    expect(message.stop_reason).toBe("refusal");
    expect(message.content.map((b) => b.type)).toEqual(["text"]);
    expect(toolInput(message)).toBeUndefined();
  });

  it("maxTokens behavior yields stop_reason max_tokens with a truncated tool input", async () => {
    fake.setBehavior({ kind: "maxTokens" });
    const message = await client(fake).messages.create(storyRequest());
    expect(message.stop_reason).toBe("max_tokens");
    expect(message.usage.output_tokens).toBe(4096);
    expect(toolInput(message)).toEqual({ title: caseFiles[0]!.title });
    expect(caseFileProblems(toolInput(message))).toContain("chapters missing");
  });

  it("text behavior yields stop_reason end_turn with only a text block", async () => {
    fake.setBehavior({ kind: "text" });
    const message = await client(fake).messages.create(storyRequest());
    expect(message.stop_reason).toBe("end_turn");
    expect(message.content.map((b) => b.type)).toEqual(["text"]);
  });

  it("overloaded behavior fails with APIError 529 after the SDK's 2 retries, quickly", async () => {
    fake.setBehavior({ kind: "overloaded" });
    const started = Date.now();
    const error = await client(fake)
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.status).toBe(529);
    expect(apiError.error).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests.map((r) => r.headers["x-stainless-retry-count"])).toEqual(["0", "1", "2"]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("overloaded with maxRetries 0 is attempted once", async () => {
    fake.setBehavior({ kind: "overloaded" });
    await expect(client(fake, { maxRetries: 0 }).messages.create(storyRequest())).rejects.toMatchObject({ status: 529 });
    expect(fake.requests).toHaveLength(1);
  });

  it("a behavior function can fail the first attempts and then succeed", async () => {
    fake.setBehavior((index) => (index < 2 ? { kind: "overloaded" } : undefined));
    const message = await client(fake).messages.create(storyRequest());
    expect(message.stop_reason).toBe("tool_use");
    expect(toolInput(message)).toEqual(caseFiles[0]);
    expect(fake.requests).toHaveLength(3);
  });

  it("status behavior sends any status and body", async () => {
    fake.setBehavior({
      kind: "status",
      status: 429,
      body: { type: "error", error: { type: "rate_limit_error", message: "Slow down" } },
    });
    const rateLimited = await client(fake)
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(rateLimited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(fake.requests).toHaveLength(3);

    fake.reset();
    fake.setBehavior({ kind: "status", status: 500, body: "upstream exploded" });
    const serverError = await client(fake, { maxRetries: 0 })
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(serverError).toBeInstanceOf(Anthropic.InternalServerError);
    expect((serverError as Error).message).toContain("upstream exploded");

    fake.reset();
    fake.setBehavior({ kind: "status", status: 403 });
    await expect(client(fake).messages.create(storyRequest())).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(fake.requests).toHaveLength(1);
  });

  it("echoKey behavior returns a 400 whose message contains the API key", async () => {
    fake.setBehavior({ kind: "echoKey" });
    const error = await client(fake)
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as Error).message).toContain(API_KEY);
    expect(fake.requests).toHaveLength(1);
  });

  it("hang behavior never answers until the client gives up", async () => {
    fake.setBehavior({ kind: "hang" });
    const error = await client(fake, { timeout: 200, maxRetries: 0 })
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect(fake.requests).toHaveLength(1);
    await expect.poll(() => fake.disconnects).toBe(1);
  });

  it("close() returns promptly while a request is hanging", async () => {
    const hanging = await startAnthropicServer({ behavior: { kind: "hang" } });
    const pending = client(hanging, { maxRetries: 0 })
      .messages.create(storyRequest())
      .catch((e: unknown) => e);
    await expect.poll(() => hanging.requests.length).toBe(1);
    const started = Date.now();
    await hanging.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await pending).toBeInstanceOf(Anthropic.APIConnectionError);
  });

  it("applies latencyMs before answering", async () => {
    const slow = await startAnthropicServer({ latencyMs: 150 });
    try {
      const started = Date.now();
      const message = await client(slow).messages.create(storyRequest());
      expect(message.stop_reason).toBe("tool_use");
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    } finally {
      await slow.close();
    }
  });

  it("cycles through options.caseFiles", async () => {
    const custom = await startAnthropicServer({ caseFiles: [caseFiles[3]!] });
    try {
      const anthropic = client(custom);
      const slugs: string[] = [];
      for (let i = 0; i < 3; i++) {
        slugs.push((toolInput(await anthropic.messages.create(storyRequest())) as CaseFile).slug);
      }
      expect(slugs).toEqual([caseFiles[3]!.slug, `${caseFiles[3]!.slug}-2`, `${caseFiles[3]!.slug}-3`]);
    } finally {
      await custom.close();
    }
  });

  describe("request validation (400 invalid_request_error)", () => {
    async function post(body: unknown, headers: Record<string, string> = {}) {
      const response = await fetch(`${fake.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": API_KEY, "anthropic-version": "2023-06-01", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as { type: string; error: { type: string; message: string } } };
    }

    it("rejects a body without max_tokens", async () => {
      const { max_tokens: _maxTokens, ...withoutMaxTokens } = storyRequest();
      const result = await post(withoutMaxTokens);
      expect(result.status).toBe(400);
      expect(result.body.type).toBe("error");
      expect(result.body.error.type).toBe("invalid_request_error");
      expect(result.body.error.message).toContain("max_tokens");
      expect(fake.requests).toHaveLength(1);
      expect(fake.servedCaseFiles).toHaveLength(0);
    });

    it.each([
      ["a non-integer max_tokens", { ...storyRequest(), max_tokens: 1.5 }, "max_tokens"],
      ["a zero max_tokens", { ...storyRequest(), max_tokens: 0 }, "max_tokens"],
      ["a missing model", { ...storyRequest(), model: undefined }, "model"],
      ["empty messages", { ...storyRequest(), messages: [] }, "messages"],
      ["a message without content", { ...storyRequest(), messages: [{ role: "user" }] }, "messages.0.content"],
      ["a message with a bad role", { ...storyRequest(), messages: [{ role: "system", content: "hi" }] }, "messages.0.role"],
      ["a tool without input_schema", { ...storyRequest(), tools: [{ name: "record_case_file" }] }, "input_schema"],
      ["a tool without a name", { ...storyRequest(), tools: [{ input_schema: { type: "object" } }] }, "tools.0.name"],
      [
        "tool_choice naming an undeclared tool",
        { ...storyRequest(), tool_choice: { type: "tool", name: "something_else" } },
        "tool_choice.name",
      ],
      ["tool_choice without tools", { ...storyRequest(), tools: undefined }, "tool_choice"],
    ])("rejects %s", async (_label, body, fragment) => {
      const result = await post(body);
      expect(result.status).toBe(400);
      expect(result.body.error.type).toBe("invalid_request_error");
      expect(result.body.error.message).toContain(fragment);
    });

    it("rejects invalid JSON and a missing anthropic-version header", async () => {
      expect((await post("{not json")).status).toBe(400);
      const noVersion = await fetch(`${fake.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": API_KEY },
        body: JSON.stringify(storyRequest()),
      });
      expect(noVersion.status).toBe(400);
      expect(((await noVersion.json()) as { error: { message: string } }).error.message).toContain("anthropic-version");
    });

    it("surfaces as a BadRequestError through the SDK", async () => {
      const request = { ...storyRequest(), tool_choice: { type: "tool" as const, name: "not_declared" } };
      await expect(client(fake).messages.create(request)).rejects.toBeInstanceOf(Anthropic.BadRequestError);
      expect(fake.requests).toHaveLength(1);
    });
  });
});

describe("fake Anthropic server: structured outputs and current models", () => {
  let fake: FakeAnthropic;
  beforeAll(async () => {
    fake = await startAnthropicServer({ apiKey: API_KEY });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
  });

  /** The JSON-schema subset structured outputs accept: every object closed. */
  type Schema = Record<string, unknown>;
  const closed = (schema: Schema): Schema =>
    schema.type === "object"
      ? {
          ...schema,
          additionalProperties: false,
          properties: Object.fromEntries(Object.entries(schema.properties as Record<string, Schema>).map(([k, v]) => [k, closed(v)])),
        }
      : schema.type === "array"
        ? { ...schema, items: closed(schema.items as Schema) }
        : schema;

  const structured = (
    model: string,
    schema: Record<string, unknown> = closed(caseFileSchema),
  ): Anthropic.MessageCreateParamsNonStreaming => ({
    model,
    max_tokens: 4096,
    messages: [{ role: "user", content: "Write a new case file." }],
    output_config: { format: { type: "json_schema", schema } },
  });

  it("answers output_config.format with the case file as JSON text", async () => {
    const message = await client(fake).messages.create(structured("claude-sonnet-5-5"));
    expect(message.stop_reason).toBe("end_turn");
    const [block] = message.content;
    expect(block!.type).toBe("text");
    expect(JSON.parse((block as Anthropic.TextBlock).text)).toEqual(caseFiles[0]);
    expect(caseFileProblems(JSON.parse((block as Anthropic.TextBlock).text))).toEqual([]);
  });

  it("refuses a schema outside the structured-outputs subset, as the API does", async () => {
    const anthropic = client(fake, { maxRetries: 0 });
    await expect(anthropic.messages.create(structured("claude-sonnet-5-5", caseFileSchema as Record<string, unknown>))).rejects.toThrow(
      /additionalProperties/,
    );
    const bounded = closed({
      ...caseFileSchema,
      properties: {
        ...(caseFileSchema.properties as Record<string, unknown>),
        chapters: { type: "array", minItems: 8, items: { type: "string" } },
      },
    });
    await expect(anthropic.messages.create(structured("claude-sonnet-5-5", bounded))).rejects.toThrow(/minItems/);
  });

  it("refuses a forced tool_choice on current models and with thinking on any model", async () => {
    const anthropic = client(fake, { maxRetries: 0 });
    await expect(anthropic.messages.create({ ...storyRequest(), model: "claude-sonnet-5-5" })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );
    await expect(anthropic.messages.create({ ...storyRequest(), thinking: { type: "adaptive" } })).rejects.toThrow(/forces tool use/);
    // SDK 1.12 no longer types sampling parameters; a caller on an older shape may still send one.
    const withTemperature = { ...structured("claude-sonnet-5-5"), temperature: 1 } as Anthropic.MessageCreateParamsNonStreaming;
    await expect(anthropic.messages.create(withTemperature)).rejects.toThrow(/sampling/);
    expect((await anthropic.messages.create(storyRequest())).stop_reason).toBe("tool_use");
  });

  it("cuts a structured answer off at max_tokens and refuses with stop_reason refusal", async () => {
    const anthropic = client(fake);
    fake.setBehavior({ kind: "maxTokens" });
    const cut = await anthropic.messages.create(structured("claude-sonnet-5-5"));
    expect(cut.stop_reason).toBe("max_tokens");
    expect(() => JSON.parse((cut.content[0] as Anthropic.TextBlock).text)).toThrow();
    fake.setBehavior({ kind: "refusal" });
    const refused = await anthropic.messages.create(structured("claude-sonnet-5-5"));
    expect(refused.stop_reason).toBe("refusal");
  });
});
