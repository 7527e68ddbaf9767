/**
 * A deployment under contention, for the embedded backend: the named mutations
 * (e.g. "portraits:markStored") throw the first time they run for each job, as a
 * write conflict that outlasted Convex's own retries would. The functions
 * themselves are unchanged; only the modules map convex-test runs is wrapped.
 */
import { wrapMutations, type Modules } from "../lib/backend.ts";

export function throwingOnce(modules: Modules, fnNames: string[]): Modules {
  const thrown = new Set<string>();
  return wrapMutations(modules, (fnName, handler) => {
    if (!fnNames.includes(fnName)) return handler;
    return async (ctx, args) => {
      const key = `${fnName}:${String(args.jobId)}`;
      if (!thrown.has(key)) {
        thrown.add(key);
        throw new Error(`injected fault: ${fnName} for ${String(args.jobId)} (a write conflict past Convex's retries)`);
      }
      return handler(ctx, args);
    };
  });
}
