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
import { internalMutationGeneric, internalQueryGeneric, type GenericSchema, type SchemaDefinition } from "convex/server";
import projectSchema from "../../convex/schema.ts";

const CONVEX_DIR = fileURLToPath(new URL("../../convex/", import.meta.url));

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

/** `schema` may add tables to the project's (the Convex Auth stack adds `authTables`); `transactionLimits` enforces Convex's. */
export function newBackend(
  modules: Record<string, () => Promise<unknown>> = convexModules(),
  schema: SchemaDefinition<GenericSchema, boolean> = projectSchema,
  { transactionLimits = false }: { transactionLimits?: boolean } = {},
) {
  return convexTest({ schema: schema as typeof projectSchema, modules, transactionLimits });
}

export const ADMIN_IDENTITY = { email: "admin@demo.local", emailVerified: true, subject: "demo-admin", name: "Demo Admin" };

export type Modules = Record<string, () => Promise<unknown>>;
type MutationHandler = (ctx: unknown, args: Record<string, unknown>) => Promise<unknown>;
type RegisteredFunction = ((...args: unknown[]) => unknown) & Record<string, unknown>;

/**
 * A modules map whose mutations run through `wrap` (given the function's name,
 * e.g. "portraits:claim", and its own handler), registered with the same
 * validators; everything else is left as it is. The bench meters mutations
 * this way, and the fakes make them fail.
 */
export function wrapMutations(modules: Modules, wrap: (fnName: string, handler: MutationHandler) => MutationHandler): Modules {
  return wrapFunctions(modules, wrap, { queries: false });
}

/** Like wrapMutations, and queries too when `queries` (the bench's transaction meter). */
export function wrapFunctions(
  modules: Modules,
  wrap: (fnName: string, handler: MutationHandler) => MutationHandler,
  { queries }: { queries: boolean },
): Modules {
  return Object.fromEntries(
    Object.entries(modules).map(([path, load]) => [
      path,
      async () => {
        const mod = (await load()) as Record<string, RegisteredFunction>;
        if (path.includes("_generated")) return mod;
        const file = path.replace(/^.*convex\//, "").replace(/\.(ts|js)$/, "");
        return Object.fromEntries(
          Object.entries(mod).map(([name, fn]) => {
            if (!fn || typeof fn !== "function" || typeof fn._handler !== "function") return [name, fn];
            if (!fn.isMutation && !(queries && fn.isQuery)) return [name, fn];
            const handler = wrap(`${file}:${name}`, fn._handler as MutationHandler);
            const register = fn.isMutation ? internalMutationGeneric : internalQueryGeneric;
            const wrapped = register({ handler }) as unknown as RegisteredFunction;
            Object.assign(wrapped, {
              exportArgs: fn.exportArgs,
              exportReturns: fn.exportReturns,
              isInternal: fn.isInternal,
              isPublic: fn.isPublic,
            });
            return [name, wrapped];
          }),
        );
      },
    ]),
  );
}
