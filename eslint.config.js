// ESLint flat config: typescript-eslint's recommended rules everywhere, Convex's own rules
// (@convex-dev/eslint-plugin) on the backend. `npm run lint` runs it; formatting is Prettier's job.
import js from "@eslint/js";
import convexPlugin from "@convex-dev/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "convex/_generated/", "dist/", "out/", "admin/dist/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: "module" },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // TypeScript already reports undefined names, with the right globals per tsconfig.
      "no-undef": "off",
    },
  },
  { files: ["convex/**/*.ts"], ignores: ["convex/_generated/**"], extends: [...convexPlugin.configs.recommended] },
  // The two modules that read Convex environment variables: every other module asks them.
  { files: ["convex/lib/config.ts", "convex/lib/log.ts"], rules: { "@convex-dev/no-process-env": "off" } },
);
