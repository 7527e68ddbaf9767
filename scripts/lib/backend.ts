/**
 * The embedded backend: the project's own Convex functions, unmodified, on
 * convex-test inside this Node process. Outside vitest there is no
 * `import.meta.glob`, so the modules map is built from the convex/ directory;
 * convex-test finds the functions root from the key that contains `_generated`.
 */
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { convexTest } from "convex-test";
import schema from "../../convex/schema.ts";

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

export function newBackend(modules: Record<string, () => Promise<unknown>> = convexModules()) {
  return convexTest(schema, modules);
}

export const ADMIN_IDENTITY = { email: "admin@demo.local", emailVerified: true, subject: "demo-admin", name: "Demo Admin" };
