import { secrets } from "./config";

const MAX_MESSAGE_LENGTH = 500;

/**
 * Removes every known secret, and anything shaped like a bearer token or API key,
 * from text bound for a log line, an event or an error message. Providers
 * sometimes echo the credentials they were sent.
 */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets()) out = out.split(secret).join("[redacted]");
  out = out
    .replace(/(bearer\s+)[^\s"',;]+/gi, "$1[redacted]")
    .replace(/(basic\s+)[A-Za-z0-9+/]{8,}={0,2}/gi, "$1[redacted]") // HTTP Basic credentials (TinyPNG's api:<key>)
    .replace(/(x-api-key["']?\s*[:=]\s*["']?)[^\s"',;]+/gi, "$1[redacted]")
    .replace(/\bsk-ant-[A-Za-z0-9_-]+/g, "[redacted]");
  return out.length > MAX_MESSAGE_LENGTH ? `${out.slice(0, MAX_MESSAGE_LENGTH)}…` : out;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? `: ${cause.message}` : "";
    return redact(`${error.name}: ${error.message}${causeText}`);
  }
  return redact(String(error));
}
