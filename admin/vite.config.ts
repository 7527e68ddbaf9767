import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// `vite` / `vite build` target a Convex deployment: VITE_CONVEX_URL, read from
// the repository's .env.local (written by `npx convex dev`) or the environment.
// `--mode bridge` builds the app for the local bridge (scripts/lib/bridge.ts).
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  envDir: fileURLToPath(new URL("..", import.meta.url)),
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
});
