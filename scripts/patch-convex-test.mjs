// Why: convex-test 0.0.60 lets an action's ctx.storage.store/delete join whatever mutation is running globally, so the write fails or is rolled back with it.
// Upstream: get-convex/convex-test pull request 151 ("fix(storage): isolate action transactions"); this patch only changes writeToDatabase's condition.
// Delete this script (and the postinstall entry) once a convex-test release includes that fix; it exits 1 whenever the installed version is not 0.0.60.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const EXPECTED_VERSION = "0.0.60";
const MARKER = "/* patched: convex-test PR 151 */";
const ORIGINAL =
  "async function writeToDatabase(impl) {\n" +
  "    const db = getDb();\n" +
  "    if (!getTransactionManager().isInTransaction()) {\n";
// Join the current transaction only when this invocation is itself a
// mutation/query (t.run counts: it runs as a mutation); actions and HTTP
// actions take their own transaction through withAuth().run below.
const PATCHED =
  "async function writeToDatabase(impl) {\n" +
  "    const db = getDb();\n" +
  `    const udfType = executionContextStorage.getStore()?.udfType; ${MARKER}\n` +
  '    if (udfType !== "mutation" && udfType !== "query") {\n';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pkgDir = join(root, "node_modules", "convex-test");
const target = join(pkgDir, "dist", "index.js");
const fail = (msg) => {
  console.error(`patch-convex-test: ${msg}`);
  process.exit(1);
};

let version;
let source;
try {
  readFileSync(join(pkgDir, "package.json"));
} catch {
  // A production install (--omit=dev) has no convex-test and needs no patch.
  console.log("patch-convex-test: convex-test is not installed, nothing to patch.");
  process.exit(0);
}
try {
  version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  source = readFileSync(target, "utf8");
} catch (e) {
  fail(`cannot read ${target} (${e.code ?? e.message}); is convex-test installed?`);
}

if (source.includes(MARKER)) {
  console.log(`patch-convex-test: convex-test ${version} already patched (PR 151), nothing to do.`);
  process.exit(0);
}
if (version !== EXPECTED_VERSION) {
  fail(
    `convex-test is ${version}, patch targets ${EXPECTED_VERSION}: check whether get-convex/convex-test PR 151 has landed and, if so, remove scripts/patch-convex-test.mjs and its postinstall entry.`,
  );
}
const occurrences = source.split(ORIGINAL).length - 1;
if (occurrences !== 1) {
  fail(
    `expected writeToDatabase's isInTransaction() check exactly once in ${target}, found ${occurrences}: check whether PR 151 has landed (then remove this patch) or reinstall convex-test ${EXPECTED_VERSION}.`,
  );
}
writeFileSync(target, source.replace(ORIGINAL, PATCHED));
console.log(`patch-convex-test: patched convex-test ${version} writeToDatabase (PR 151: action storage writes take their own transaction).`);
