/**
 * Counts what each Convex function reads and writes, document by document, on
 * the embedded backend: the bench's modules map with every mutation's `ctx.db`,
 * `ctx.scheduler` and `ctx.storage` wrapped. Each call is attributed to the job
 * it works for (its `jobId` argument, or the story insertStory returns), or to
 * the loop (the dispatcher, the sweep, bulk retries), so the bench can tell a
 * job's own documents from documents several jobs write. Counts are what a
 * deployment would also do; nothing here measures the emulator's speed.
 */
import { convexModules, wrapMutations, type Modules } from "./backend.ts";

export interface Access {
  fn: string;
  /** Which invocation (a counter over all metered calls). */
  call: number;
  owner: string;
  op: "read" | "write";
  table: string;
  id: string;
}

let calls = 0;

type AnyFn = ((...args: unknown[]) => unknown) & Record<string, unknown>;

const tableOf = (id: string) => id.match(/[A-Za-z_]+$/)?.[0] ?? "unknown";

/** Records every document a query chain returns. */
function meteredQuery(query: object, table: string, read: (table: string, id: string) => void): object {
  const recordResult = (result: unknown) => {
    const docs = Array.isArray(result)
      ? result
      : result && typeof result === "object" && "page" in result
        ? (result as { page: unknown[] }).page
        : [result];
    for (const doc of docs) if (doc && typeof doc === "object" && "_id" in doc) read(table, String((doc as { _id: string })._id));
    return result;
  };
  return new Proxy(query, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const out = (value as AnyFn).apply(target, args);
        if (out && typeof (out as Promise<unknown>).then === "function") return (out as Promise<unknown>).then(recordResult);
        if (out && typeof out === "object") return meteredQuery(out, table, read);
        return out;
      };
    },
  });
}

function meteredReader(db: Record<string, AnyFn>, read: (table: string, id: string) => void) {
  return {
    get: async (...args: unknown[]) => {
      const doc = (await db.get!(...args)) as { _id: string } | null;
      if (doc) read(tableOf(String(doc._id)), String(doc._id));
      return doc;
    },
    query: (table: string) => meteredQuery(db.query!(table) as object, table, read),
  };
}

function wrapCtx(ctx: Record<string, unknown>, log: (op: Access["op"], table: string, id: string) => void) {
  const db = ctx.db as Record<string, AnyFn> & { system: Record<string, AnyFn> };
  const read = (table: string, id: string) => log("read", table, id);
  const write = (id: unknown) => log("write", tableOf(String(id)), String(id));
  const idArg = (args: unknown[]) => (args.length >= 3 || (args.length === 2 && typeof args[1] === "string") ? args[1] : args[0]);
  const scheduler = ctx.scheduler as Record<string, AnyFn>;
  const storage = ctx.storage as Record<string, AnyFn>;
  return {
    ...ctx,
    db: {
      ...db,
      ...meteredReader(db, read),
      system: { ...db.system, ...meteredReader(db.system, read) },
      normalizeId: db.normalizeId?.bind(db),
      insert: async (table: string, value: unknown) => {
        const id = await db.insert!(table, value);
        log("write", table, String(id));
        return id;
      },
      patch: async (...args: unknown[]) => (write(idArg(args)), db.patch!(...args)),
      replace: async (...args: unknown[]) => (write(idArg(args)), db.replace!(...args)),
      delete: async (...args: unknown[]) => (write(args[args.length - 1]), db.delete!(...args)),
    },
    scheduler: {
      ...scheduler,
      runAt: async (...args: unknown[]) => {
        const id = await scheduler.runAt!(...args);
        log("write", "_scheduled_functions", String(id));
        return id;
      },
      runAfter: async (...args: unknown[]) => {
        const id = await scheduler.runAfter!(...args);
        log("write", "_scheduled_functions", String(id));
        return id;
      },
      cancel: async (id: unknown) => (write(id), scheduler.cancel!(id)),
    },
    storage: { ...storage, delete: async (id: unknown) => (log("write", "_storage", String(id)), storage.delete!(id)) },
  };
}

/** The bench's modules map with every mutation metered into `accesses`. */
export function meteredModules(accesses: Access[]): Modules {
  return wrapMutations(convexModules(), (fnName, handler) => async (ctx, args) => {
    const pending: Omit<Access, "owner">[] = [];
    const call = ++calls;
    const result = await handler(
      wrapCtx(ctx as Record<string, unknown>, (op, table, id) => pending.push({ fn: fnName, call, op, table, id })),
      args,
    );
    const owner =
      typeof args?.jobId === "string" ? `job:${args.jobId}` : fnName === "stories:insertStory" ? `story:${String(result)}` : "loop";
    for (const access of pending) accesses.push({ ...access, owner });
    return result;
  });
}
