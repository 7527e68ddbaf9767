// @vitest-environment edge-runtime
// Regression test for scripts/patch-convex-test.mjs (get-convex/convex-test PR 151):
// an action's ctx.storage.store/delete must take its own transaction instead of
// joining whichever mutation happens to be running at the same moment.
import { convexTest } from "convex-test";
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import type { GenericId } from "convex/values";
import { describe, expect, test } from "vitest";

const schema = defineSchema({ notes: defineTable({ n: v.number() }) });

// Only inline functions are used, so no module is ever loaded; convexTest just
// needs one key containing "_generated" to locate the functions root.
const modules = { "./_generated/api.js": async () => ({}) };
const newTest = () => convexTest(schema, modules);
type TestConvex = ReturnType<typeof newTest>;

const ACTIONS = 24;
const MUTATIONS = 24;

function bytesFor(i: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(64 + i));
  for (let k = 0; k < bytes.length; k++) bytes[k] = (i * 31 + k * 7) & 0xff;
  return bytes;
}

// Keeps a mutation's transaction open across several real async hops, so
// concurrent actions run their storage syscalls while it holds the lock.
async function stayBusy(): Promise<void> {
  for (let k = 0; k < 4; k++) {
    await crypto.subtle.digest("SHA-256", new Uint8Array(4096));
  }
}

function startMutations(
  t: TestConvex,
  count: number,
  throwsWhen: (i: number) => boolean,
): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      t.mutation(async (ctx) => {
        await ctx.db.insert("notes", { n: i });
        await stayBusy();
        if (throwsWhen(i)) throw new Error(`rollback ${i}`);
      }),
    ),
  );
}

async function storageRowCount(t: TestConvex): Promise<number> {
  return await t.run(async (ctx) => (await ctx.db.system.query("_storage").collect()).length);
}

describe("convex-test patch: action storage writes take their own transaction", () => {
  test("concurrent action stores survive mutations committing and rolling back", async () => {
    const t = newTest();
    const mutationsDone = startMutations(t, MUTATIONS, (i) => i % 3 === 0);
    const stored = await Promise.allSettled(
      Array.from({ length: ACTIONS }, (_, i) =>
        t.action(async (ctx) => await ctx.storage.store(new Blob([bytesFor(i)]))),
      ),
    );
    const mutations = await mutationsDone;

    // Unpatched, actions either reject ("Write outside of transaction") or get an
    // id whose _storage row a foreign mutation's rollback silently removed.
    const rejected = stored.flatMap((r, i) => (r.status === "rejected" ? [`#${i}: ${String(r.reason)}`] : []));
    expect(rejected).toEqual([]);
    const ids = stored.map((r) => (r as PromiseFulfilledResult<GenericId<"_storage">>).value);
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ACTIONS);
    // The concurrent mutations behaved normally: 2/3 committed, 1/3 rolled back.
    expect(mutations.filter((r) => r.status === "rejected")).toHaveLength(MUTATIONS / 3);

    const readBack = await t.run(async (ctx) => {
      const out: (number[] | null)[] = [];
      for (const id of ids) {
        const blob = await ctx.storage.get(id);
        out.push(blob === null ? null : Array.from(new Uint8Array(await blob.arrayBuffer())));
      }
      return out;
    });
    const unreadable = readBack.flatMap((bytes, i) => {
      if (bytes === null) return [`#${i}: missing`];
      return bytes.join() === Array.from(bytesFor(i)).join() ? [] : [`#${i}: different bytes`];
    });
    expect(unreadable).toEqual([]);
    expect(await storageRowCount(t)).toBe(ACTIONS);
    const notes = await t.run(async (ctx) => (await ctx.db.query("notes").collect()).length);
    expect(notes).toBe(MUTATIONS - MUTATIONS / 3);
  });

  test("an action store does not fail when the mutation it overlapped commits mid-write", async () => {
    // Unpatched, the store joins the short mutation, which commits while the
    // 1 MiB blob is being hashed: "Write outside of transaction".
    const t = newTest();
    const mutationsDone = Promise.allSettled(
      [0, 1, 2].map((i) =>
        t.mutation(async (ctx) => {
          await ctx.db.insert("notes", { n: i });
          await Promise.resolve();
        }),
      ),
    );
    const stored = await Promise.allSettled(
      Array.from({ length: 8 }, () =>
        t.action(async (ctx) => await ctx.storage.store(new Blob([new Uint8Array(1 << 20)]))),
      ),
    );
    expect((await mutationsDone).map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    expect(stored.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []))).toEqual([]);
    expect(await storageRowCount(t)).toBe(8);
  });

  test("an action's storage.delete is not undone by a concurrent mutation that throws", async () => {
    const t = newTest();
    const ids = await t.run(async (ctx) => {
      const out: GenericId<"_storage">[] = [];
      for (let i = 0; i < ACTIONS; i++) out.push(await ctx.storage.store(new Blob([bytesFor(i)])));
      return out;
    });
    expect(await storageRowCount(t)).toBe(ACTIONS);

    const mutationsDone = startMutations(t, MUTATIONS, () => true);
    const deleted = await Promise.allSettled(
      ids.map((id) => t.action(async (ctx) => await ctx.storage.delete(id))),
    );
    const mutations = await mutationsDone;

    expect(deleted.filter((r) => r.status === "rejected")).toEqual([]);
    expect(mutations.every((r) => r.status === "rejected")).toBe(true);
    expect(await storageRowCount(t)).toBe(0);
  });

  test("t.run storage writes still roll back with t.run", async () => {
    const t = newTest();
    await expect(
      t.run(async (ctx) => {
        await ctx.storage.store(new Blob([bytesFor(1)]));
        await ctx.db.insert("notes", { n: 1 });
        throw new Error("undo t.run");
      }),
    ).rejects.toThrow("undo t.run");
    expect(await storageRowCount(t)).toBe(0);
    const notes = await t.run(async (ctx) => (await ctx.db.query("notes").collect()).length);
    expect(notes).toBe(0);
  });
});
