/**
 * The embedded backend: the project's own Convex functions, unmodified, on
 * convex-test inside this Node process. Outside vitest there is no
 * `import.meta.glob`, so the modules map is built from the convex/ directory;
 * convex-test finds the functions root from the key that contains `_generated`.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { convexTest } from "convex-test";
import type { SchemaDefinition } from "convex/server";
import projectSchema from "../../convex/schema.ts";
import { SetupError } from "./cli.ts";

export const CONVEX_DIR = fileURLToPath(new URL("../../convex/", import.meta.url));

export function convexModules(dir = CONVEX_DIR): Record<string, () => Promise<unknown>> {
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter(
    (file) => /\.(ts|js)$/.test(file) && !file.endsWith(".d.ts") && !/\.test\.ts$/.test(file),
  );
  return Object.fromEntries(
    files.map((file) => {
      const key = `convex/${relative(dir, join(dir, file)).split("\\").join("/")}`;
      const url = pathToFileURL(join(dir, file)).href;
      return [key, () => import(/* @vite-ignore */ url)];
    }),
  );
}

export type Backend = ReturnType<typeof newBackend>;

/** The install step the embedded backend depends on (skipped by `npm install --ignore-scripts`). */
export function checkSetup() {
  const convexTestMain = fileURLToPath(new URL("../../node_modules/convex-test/dist/index.js", import.meta.url));
  if (existsSync(convexTestMain) && !readFileSync(convexTestMain, "utf8").includes("patched: convex-test PR 151")) {
    throw new SetupError("convex-test is not patched for concurrent storage writes: run `node scripts/patch-convex-test.mjs` (npm install runs it)");
  }
}

/** `schema` may add tables to the project's (the Convex Auth stack adds `authTables`). */
export function newBackend(modules: Record<string, () => Promise<unknown>> = convexModules(), schema: SchemaDefinition<any, boolean> = projectSchema) {
  checkSetup();
  return convexTest(schema as typeof projectSchema, modules);
}

export const ADMIN_IDENTITY = { email: "admin@demo.local", emailVerified: true, subject: "demo-admin", name: "Demo Admin" };
