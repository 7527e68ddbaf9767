/**
 * A fake of the Anthropic Messages API (`POST /v1/messages`) for tests.
 *
 * It listens on 127.0.0.1 on a random port and speaks the wire format the real
 * `@anthropic-ai/sdk` expects, so tests can point the SDK at it with
 * `new Anthropic({ apiKey, baseURL: fake.url })` or `ANTHROPIC_BASE_URL=fake.url`.
 *
 * By default every valid request is answered with the next bundled case file:
 * as JSON text when the request asks for structured output
 * (`output_config.format`, whose schema must be in the subset the API accepts),
 * else as a forced `tool_use` whose input is the case file (scripts/caseFiles.ts), cycling forever
 * with unique titles and slugs (" 2", " 3", ... and `-2`, `-3`, ... on later cycles). `setBehavior()` switches
 * it to refusals, truncated answers, error statuses, hangs and so on.
 *
 * Authentication: the key may arrive as `x-api-key: <key>` (the documented
 * API header) or as `Authorization: Bearer <key>`, which is what
 * @anthropic-ai/sdk 1.12.0 sends for `apiKey`. Either must equal
 * `options.apiKey`.
 *
 * Retries: the SDK retries 408/409/429/5xx (including 529) up to `maxRetries`
 * times (2 by default). It ignores `retry-after: 0` (a zero delay falls back to
 * its 0.5s/1s exponential backoff), so error answers carry both
 * `retry-after: 0` and `retry-after-ms: <retryAfterMs>` (1 ms by default),
 * which makes SDK retries effectively instant. Every attempt is recorded in
 * `requests`, so tests can count them.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { caseFiles as bundledCaseFiles, type CaseFile } from "../caseFiles";

/** How the fake answers a (valid, authenticated) request. */
export type AnthropicBehavior =
  /**
   * Answer with `caseFile` (may be invalid on purpose): a forced tool_use's input, or, for a
   * structured-output request (`output_config.format`), the text of the answer (a string is sent as is).
   */
  | { kind: "caseFile"; caseFile: unknown }
  /** stop_reason "refusal", content is a single text block, no tool_use. */
  | { kind: "refusal"; text?: string }
  /** stop_reason "max_tokens", a tool_use block whose input is truncated (only a title). */
  | { kind: "maxTokens" }
  /** stop_reason "end_turn", content is a single text block, no tool_use. */
  | { kind: "text"; text?: string }
  /** HTTP 529 overloaded_error (the SDK retries it). */
  | { kind: "overloaded" }
  /** Any HTTP status with any body (objects are sent as JSON, strings as-is). */
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
  /** HTTP 400 invalid_request_error whose message contains the API key the client sent. */
  | { kind: "echoKey" }
  /** Never answers; the request stays open until the client disconnects (or close()). */
  | { kind: "hang" };

/**
 * A fixed behavior, or a function of the 0-based request index (the position of
 * the request in `requests`, i.e. counting every attempt including SDK retries).
 * Returning `undefined` means "default answer" (the next case file).
 */
export type AnthropicBehaviorSetting = AnthropicBehavior | ((index: number) => AnthropicBehavior | undefined);

export type StartAnthropicServerOptions = {
  /** The accepted API key. Default "test-anthropic-key". */
  apiKey?: string;
  /** Case files to cycle through. Default: the bundled `caseFiles`. */
  caseFiles?: readonly CaseFile[];
  /** Delay before every answer, in milliseconds. Default 0. */
  latencyMs?: number;
  /** Initial behavior. Default: answer with the next case file. */
  behavior?: AnthropicBehaviorSetting;
  /** Value of the `retry-after-ms` header on error answers. Default 1. */
  retryAfterMs?: number;
};

type RecordedAnthropicRequest = {
  method: string;
  /** Path including any query string, e.g. "/v1/messages". */
  path: string;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body, or the raw text if it was not valid JSON (undefined if empty). */
  body: unknown;
  /** Date.now() when the request body had been received. */
  at: number;
};

export type FakeAnthropic = {
  /** `http://127.0.0.1:${port}`; the SDK appends `/v1/messages`. */
  readonly url: string;
  readonly port: number;
  readonly apiKey: string;
  /** Every request received, in arrival order (including rejected ones and SDK retries). */
  readonly requests: RecordedAnthropicRequest[];
  /** Case files served by default answers, in order, as sent (with their unique slugs). */
  readonly servedCaseFiles: CaseFile[];
  /** How many requests were abandoned by the client before an answer was sent (e.g. "hang"). */
  readonly disconnects: number;
  /** Replace the behavior; `undefined` restores the default answer. */
  setBehavior(behavior: AnthropicBehaviorSetting | undefined): void;
  /** Clear requests, servedCaseFiles, disconnects and the behavior; restart the case-file cycle. */
  reset(): void;
  /** Stop listening, destroy open sockets (including hanging requests) and resolve. */
  close(): Promise<void>;
};

const DEFAULT_API_KEY = "test-anthropic-key";
const DEFAULT_TOOL_NAME = "record_case_file";
const MAX_BODY_BYTES = 32 * 1024 * 1024;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function randomId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString("hex")}`;
}

function normalizeHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** The API key the client presented: `x-api-key`, else `Authorization: Bearer`. */
function presentedKey(headers: Record<string, string>): string | undefined {
  const xApiKey = headers["x-api-key"];
  if (xApiKey !== undefined && xApiKey !== "") return xApiKey;
  const authorization = headers["authorization"];
  if (authorization !== undefined) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) return match[1];
  }
  return undefined;
}

class RequestError extends Error {}

type ValidatedRequest = {
  model: string;
  maxTokens: number;
  /** The tool a tool_use answer should name. */
  toolName: string;
  /** Whether any tools were declared. */
  hasTools: boolean;
  /** `output_config.format` was a JSON schema: answer with the JSON as a text block. */
  jsonOutput: boolean;
};

/**
 * Models that reject a forced tool_choice, thinking budgets or `disabled`, and
 * sampling parameters with a 400 (Anthropic's Sonnet 5.5 / Opus 5.5 / Fable
 * migration guides).
 */
const ADAPTIVE_ONLY_MODELS = /^claude-(sonnet-5-5|opus-5-5|fable-5)/;

const UNSUPPORTED_SCHEMA_KEYWORDS = [
  "maxItems",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
];

/**
 * The JSON Schema subset structured outputs accept: every object closed with
 * `additionalProperties: false`, `minItems` only 0 or 1, no numeric or length
 * bounds. Returns the first violation's path and reason.
 */
function structuredSchemaProblem(schema: unknown, path = "schema"): string | undefined {
  if (!isObject(schema)) return undefined;
  for (const keyword of UNSUPPORTED_SCHEMA_KEYWORDS) {
    if (keyword in schema) return `${path}.${keyword}: not supported by structured outputs`;
  }
  if ("minItems" in schema && schema.minItems !== 0 && schema.minItems !== 1) return `${path}.minItems: only 0 or 1 are supported`;
  if (schema.type === "object" && schema.additionalProperties !== false) {
    return `${path}: objects must set additionalProperties to false`;
  }
  if (isObject(schema.properties)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      const problem = structuredSchemaProblem(child, `${path}.properties.${name}`);
      if (problem) return problem;
    }
  }
  return structuredSchemaProblem(schema.items, `${path}.items`);
}

/** Validates the subset of the Messages API request the product uses. Throws RequestError. */
function validateMessagesBody(body: unknown): ValidatedRequest {
  if (!isObject(body)) throw new RequestError("request body must be a JSON object");

  const {
    model,
    max_tokens: maxTokens,
    messages,
    system,
    tools,
    tool_choice: toolChoice,
    stream,
    thinking,
    output_config: outputConfig,
  } = body;

  if (typeof model !== "string" || model.length === 0) {
    throw new RequestError("model: Field required (a non-empty string)");
  }
  if (maxTokens === undefined) throw new RequestError("max_tokens: Field required");
  if (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new RequestError("max_tokens: must be a positive integer");
  }
  if (!Array.isArray(messages)) throw new RequestError("messages: Field required (an array)");
  if (messages.length === 0) throw new RequestError("messages: at least one message is required");
  messages.forEach((message: unknown, i) => {
    if (!isObject(message)) throw new RequestError(`messages.${i}: must be an object`);
    if (message.role !== "user" && message.role !== "assistant") {
      throw new RequestError(`messages.${i}.role: must be "user" or "assistant"`);
    }
    const content = message.content;
    const validContent =
      (typeof content === "string" && content.length > 0) ||
      (Array.isArray(content) && content.length > 0 && content.every((block) => isObject(block) && typeof block.type === "string"));
    if (!validContent) {
      throw new RequestError(`messages.${i}.content: must be a non-empty string or an array of content blocks`);
    }
  });
  if (system !== undefined && typeof system !== "string" && !Array.isArray(system)) {
    throw new RequestError("system: must be a string or an array of text blocks");
  }
  if (stream === true) {
    throw new RequestError("stream: streaming is not supported by the fake Anthropic server");
  }

  const toolNames: string[] = [];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new RequestError("tools: must be an array");
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool)) throw new RequestError(`tools.${i}: must be an object`);
      if (typeof tool.name !== "string" || !/^[a-zA-Z0-9_-]{1,128}$/.test(tool.name)) {
        throw new RequestError(`tools.${i}.name: Field required (1-128 characters of [a-zA-Z0-9_-])`);
      }
      if (!isObject(tool.input_schema)) {
        throw new RequestError(`tools.${i}.input_schema: Field required (a JSON schema object)`);
      }
      if (tool.input_schema.type !== "object") {
        throw new RequestError(`tools.${i}.input_schema.type: Input should be 'object'`);
      }
      if (toolNames.includes(tool.name)) throw new RequestError(`tools: tool names must be unique (${tool.name})`);
      toolNames.push(tool.name);
    });
  }

  let forced: string | undefined;
  if (toolChoice !== undefined) {
    if (!isObject(toolChoice)) throw new RequestError("tool_choice: must be an object");
    const type = toolChoice.type;
    if (type !== "auto" && type !== "any" && type !== "tool" && type !== "none") {
      throw new RequestError('tool_choice.type: must be one of "auto", "any", "tool", "none"');
    }
    if ((type === "any" || type === "tool") && toolNames.length === 0) {
      throw new RequestError(`tool_choice.type: "${type}" requires tools to be declared`);
    }
    if (type === "tool") {
      if (typeof toolChoice.name !== "string") throw new RequestError("tool_choice.name: Field required");
      if (!toolNames.includes(toolChoice.name)) {
        throw new RequestError(`tool_choice.name: Tool '${toolChoice.name}' not found in tools`);
      }
      forced = toolChoice.name;
    }
  }

  const forcing = isObject(toolChoice) && (toolChoice.type === "tool" || toolChoice.type === "any");
  const thinkingType = isObject(thinking) ? thinking.type : undefined;
  if (thinking !== undefined && !isObject(thinking)) throw new RequestError("thinking: must be an object");
  if (forcing && (thinkingType === "enabled" || thinkingType === "adaptive")) {
    throw new RequestError("Thinking may not be enabled when tool_choice forces tool use.");
  }
  if (ADAPTIVE_ONLY_MODELS.test(model)) {
    if (forcing) throw new RequestError(`tool_choice: forced tool use is not supported for ${model}; use "auto" or output_config.format`);
    if (thinkingType === "disabled" || thinkingType === "enabled") {
      throw new RequestError(
        `"thinking.type.${thinkingType}" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.`,
      );
    }
    for (const sampling of ["temperature", "top_p", "top_k"]) {
      if (body[sampling] !== undefined) throw new RequestError(`${sampling}: sampling parameters are not supported for ${model}`);
    }
  }

  let jsonOutput = false;
  if (outputConfig !== undefined) {
    if (!isObject(outputConfig)) throw new RequestError("output_config: must be an object");
    const { effort, format } = outputConfig;
    if (effort !== undefined && effort !== null && !["low", "medium", "high", "xhigh", "max"].includes(effort as string)) {
      throw new RequestError('output_config.effort: must be one of "low", "medium", "high", "xhigh", "max"');
    }
    if (format !== undefined && format !== null) {
      if (!isObject(format) || format.type !== "json_schema") throw new RequestError('output_config.format.type: must be "json_schema"');
      if (!isObject(format.schema) || format.schema.type !== "object") {
        throw new RequestError("output_config.format.schema: Field required (a JSON schema whose type is object)");
      }
      const problem = structuredSchemaProblem(format.schema);
      if (problem) throw new RequestError(`output_config.format.${problem}`);
      jsonOutput = true;
    }
  }

  const toolName = forced ?? (toolNames.includes(DEFAULT_TOOL_NAME) ? DEFAULT_TOOL_NAME : (toolNames[0] ?? DEFAULT_TOOL_NAME));
  return { model, maxTokens, toolName, hasTools: toolNames.length > 0, jsonOutput };
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

const DEFAULT_REFUSAL_TEXT = "I can't help with writing this case file. I'd be happy to help with a different story instead.";
const DEFAULT_PLAIN_TEXT =
  "Here is a case file for your game. Patient P-0000 was admitted on a cold night in 1961, and the staff still will not speak of what followed.";

export async function startAnthropicServer(options: StartAnthropicServerOptions = {}): Promise<FakeAnthropic> {
  const apiKey = options.apiKey ?? DEFAULT_API_KEY;
  const files: readonly CaseFile[] = options.caseFiles ?? bundledCaseFiles;
  const latencyMs = Math.max(0, options.latencyMs ?? 0);
  const retryAfterMs = options.retryAfterMs ?? 1;

  let behavior: AnthropicBehaviorSetting | undefined = options.behavior;
  let servedCount = 0;
  let disconnects = 0;
  let closed = false;
  const requests: RecordedAnthropicRequest[] = [];
  const servedCaseFiles: CaseFile[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  function caseFileAt(count: number): CaseFile {
    if (files.length === 0) throw new Error("fake Anthropic server has no case files to serve");
    const base = files[count % files.length];
    const cycle = Math.floor(count / files.length);
    const copy = structuredClone(base) as CaseFile;
    if (cycle > 0) {
      copy.title = `${base!.title} ${cycle + 1}`;
      copy.slug = `${base!.slug}-${cycle + 1}`;
    }
    return copy;
  }

  function resolveBehavior(index: number): AnthropicBehavior | undefined {
    if (behavior === undefined) return undefined;
    return typeof behavior === "function" ? behavior(index) : behavior;
  }

  function send(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
    if (res.destroyed || res.writableEnded) return;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const isError = status >= 400;
    res.writeHead(status, {
      "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "request-id": randomId("req_"),
      ...(isError ? { "retry-after": "0", "retry-after-ms": String(retryAfterMs) } : {}),
      ...extraHeaders,
    });
    res.end(text);
  }

  function sendError(res: ServerResponse, status: number, type: string, message: string): void {
    send(res, status, { type: "error", error: { type, message } });
  }

  function message(
    validated: ValidatedRequest,
    rawBody: string,
    content: JsonObject[],
    stopReason: string,
    outputTokens?: number,
  ): JsonObject {
    return {
      id: randomId("msg_"),
      type: "message",
      role: "assistant",
      model: validated.model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: {
        input_tokens: estimateTokens(rawBody),
        output_tokens: outputTokens ?? estimateTokens(JSON.stringify(content)),
      },
    };
  }

  function toolUse(name: string, input: unknown): JsonObject {
    return { type: "tool_use", id: randomId("toolu_"), name, input };
  }

  function answer(req: IncomingMessage, res: ServerResponse, index: number, record: RecordedAnthropicRequest, rawBody: string): void {
    const url = new URL(record.path, "http://127.0.0.1");
    if (url.pathname !== "/v1/messages") {
      sendError(res, 404, "not_found_error", `Not found: ${req.method ?? "?"} ${url.pathname}`);
      return;
    }
    if (req.method !== "POST") {
      sendError(res, 405, "invalid_request_error", `Method ${req.method ?? "?"} not allowed on /v1/messages`);
      return;
    }

    const key = presentedKey(record.headers);
    if (key !== apiKey) {
      sendError(res, 401, "authentication_error", "invalid x-api-key");
      return;
    }
    if (!record.headers["anthropic-version"]) {
      sendError(res, 400, "invalid_request_error", "anthropic-version: header is required");
      return;
    }
    if (typeof record.body === "string") {
      sendError(res, 400, "invalid_request_error", "request body is not valid JSON");
      return;
    }

    let validated: ValidatedRequest;
    try {
      validated = validateMessagesBody(record.body);
    } catch (error) {
      if (error instanceof RequestError) {
        sendError(res, 400, "invalid_request_error", error.message);
        return;
      }
      throw error;
    }

    const chosen = resolveBehavior(index);
    // A structured-output request gets its JSON as the text of the answer.
    const caseFileAnswer = (input: unknown): [JsonObject[], string] =>
      validated.jsonOutput
        ? [[{ type: "text", text: typeof input === "string" ? input : JSON.stringify(input) }], "end_turn"]
        : [[toolUse(validated.toolName, input)], "tool_use"];
    if (chosen === undefined) {
      if (validated.jsonOutput) {
        const caseFile = caseFileAt(servedCount);
        servedCount += 1;
        servedCaseFiles.push(caseFile);
        send(res, 200, message(validated, rawBody, ...caseFileAnswer(caseFile)));
        return;
      }
      if (!validated.hasTools) {
        send(res, 200, message(validated, rawBody, [{ type: "text", text: DEFAULT_PLAIN_TEXT }], "end_turn"));
        return;
      }
      const caseFile = caseFileAt(servedCount);
      servedCount += 1;
      servedCaseFiles.push(caseFile);
      send(res, 200, message(validated, rawBody, [toolUse(validated.toolName, caseFile)], "tool_use"));
      return;
    }

    switch (chosen.kind) {
      case "caseFile":
        send(res, 200, message(validated, rawBody, ...caseFileAnswer(chosen.caseFile)));
        return;
      case "refusal":
        send(res, 200, message(validated, rawBody, [{ type: "text", text: chosen.text ?? DEFAULT_REFUSAL_TEXT }], "refusal"));
        return;
      case "maxTokens": {
        const partial = files.length > 0 ? { title: caseFileAt(servedCount).title } : {};
        // Cut off mid-answer: a tool call's input holds what had been written, JSON text just stops.
        const content = validated.jsonOutput
          ? [{ type: "text", text: JSON.stringify(files.length > 0 ? caseFileAt(servedCount) : partial).slice(0, 80) }]
          : [toolUse(validated.toolName, partial)];
        send(res, 200, message(validated, rawBody, content, "max_tokens", validated.maxTokens));
        return;
      }
      case "text":
        send(res, 200, message(validated, rawBody, [{ type: "text", text: chosen.text ?? DEFAULT_PLAIN_TEXT }], "end_turn"));
        return;
      case "overloaded":
        sendError(res, 529, "overloaded_error", "Overloaded");
        return;
      case "status":
        send(
          res,
          chosen.status,
          chosen.body ?? {
            type: "error",
            error: { type: chosen.status >= 500 ? "api_error" : "invalid_request_error", message: `HTTP ${chosen.status}` },
          },
          chosen.headers,
        );
        return;
      case "echoKey":
        sendError(res, 400, "invalid_request_error", `API key ${key} is not permitted to use model ${validated.model}`);
        return;
      case "hang":
        // Leave the response open; it ends when the client disconnects or close() runs.
        return;
      default: {
        const unknownKind: never = chosen;
        throw new Error(`unknown behavior ${JSON.stringify(unknownKind)}`);
      }
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    res.on("finish", () => {
      answered = true;
    });
    res.on("close", () => {
      if (!answered && !closed) disconnects += 1;
    });

    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        sendError(res, 413, "request_too_large", "Request exceeds the maximum allowed size");
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (res.writableEnded) return;
      const rawBody = Buffer.concat(chunks).toString("utf8");
      let body: unknown = undefined;
      if (rawBody.length > 0) {
        try {
          body = JSON.parse(rawBody) as unknown;
        } catch {
          body = rawBody;
        }
      }
      const record: RecordedAnthropicRequest = {
        method: req.method ?? "",
        path: req.url ?? "/",
        headers: normalizeHeaders(req.headers),
        body,
        at: Date.now(),
      };
      const index = requests.push(record) - 1;

      const run = (): void => {
        if (closed || res.destroyed) return;
        try {
          answer(req, res, index, record, rawBody);
        } catch (error) {
          sendError(res, 500, "api_error", `fake Anthropic server error: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      if (latencyMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          run();
        }, latencyMs);
        timers.add(timer);
      } else {
        run();
      }
    });
  });

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    apiKey,
    requests,
    servedCaseFiles,
    get disconnects() {
      return disconnects;
    },
    setBehavior(next) {
      behavior = next;
    },
    reset() {
      requests.length = 0;
      servedCaseFiles.length = 0;
      servedCount = 0;
      disconnects = 0;
      behavior = undefined;
    },
    close() {
      if (closing) return closing;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      closing = new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
