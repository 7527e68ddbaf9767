// The fast tier's checks (`npm run check`), side by side: they are independent, and on two cores
// this takes about half their time one after another. `codegen:check` rewrites convex/_generated/,
// so it runs before the steps that read it (knip too: it follows imports into convex/_generated/).
// Each step's output is printed whole when it ends.
import { spawn } from "node:child_process";

const phases = [
  ["codegen:check", "format:check"],
  ["lint", "typecheck:root", "typecheck:convex", "knip"],
];

function run(script) {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "-s", script], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("close", (code) => {
      const ok = code === 0;
      console.log(`${ok ? "ok" : "FAILED"}  npm run ${script}${output.trim() ? `\n${output.trimEnd()}` : ""}`);
      resolve(ok);
    });
  });
}

for (const phase of phases) {
  const results = await Promise.all(phase.map(run));
  if (results.includes(false)) {
    console.error(`check: ${phase.filter((_, i) => !results[i]).join(", ")} failed`);
    process.exit(1);
  }
}
