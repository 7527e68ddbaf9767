import { ConvexError } from "convex/values";
import type { ErrorInfo } from "react";

/** The admin functions' refusal: an expected state (the forbidden page), not a fault. */
export function isForbidden(error: unknown): boolean {
  return error instanceof ConvexError && error.data === "forbidden";
}

function isUnreachable(error: unknown): boolean {
  const e = error as { name?: string; message?: string } | undefined;
  return e?.name === "UnreachableError" || (e instanceof TypeError && /fetch|network|load failed/i.test(e.message ?? ""));
}

/** What to tell an operator about a failed call, in words (never a raw "Failed to fetch"). */
export function describeError(error: unknown): string {
  if (isForbidden(error)) return "Your account may not do this.";
  if (isUnreachable(error)) return "The backend cannot be reached. Try again when the console is back online.";
  if (error instanceof ConvexError) return typeof error.data === "string" ? error.data : JSON.stringify(error.data);
  return (error as Error)?.message || String(error);
}

/**
 * createRoot's onCaughtError: React logs every error an error boundary
 * catches; a refusal is an expected state the forbidden page shows, so it is
 * not logged as an error.
 */
export function onCaughtError(error: unknown, info: ErrorInfo) {
  if (isForbidden(error)) return;
  console.error(error, info.componentStack);
}
