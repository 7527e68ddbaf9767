// Regenerates convex/_generated offline and fails if the committed copy differs:
// the generated API types must match the functions they describe.
import { execFileSync } from "node:child_process";

const run = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

try {
  run("npx", ["convex", "codegen", "--system-udfs", "--typecheck", "disable"]);
} catch (error) {
  console.error(`codegen:check: \`convex codegen\` failed:\n${error.stderr || error.message}`);
  process.exit(1);
}
const changed = run("git", ["status", "--porcelain", "--", "convex/_generated"]).trim();
if (changed) {
  console.error(`codegen:check: convex/_generated was stale and has been regenerated; commit it:\n${changed}`);
  process.exit(1);
}
console.log("codegen:check: convex/_generated is current");
