/**
 * The one Chromium the browser tests and the screenshot scripts drive, through
 * playwright-core. Which binary, first match wins:
 *
 * 1. `CHROMIUM_PATH`: any Chromium the caller names.
 * 2. Debian's `/usr/bin/chromium` when installed (skipped with `CHROMIUM_PREFER=npm`).
 * 3. The x86-64 Chromium that the npm package `@sparticuz/chromium` ships
 *    brotli-compressed, so `npm install` alone provisions a browser. It is
 *    extracted once per version to `node_modules/.cache/` (not to /tmp as the
 *    package's own `executablePath()` does): each process extracts into a
 *    folder of its own and renames it into place, so parallel workers never
 *    see half a browser and an interrupted extraction leaves only a partial
 *    folder that the next run deletes.
 *
 * Launched with plain arguments (not the package's recommended serverless ones:
 * `--disable-web-security` and `--single-process` would hide CORS problems and
 * crashes), and checked to paint text: without fonts Chromium renders blank
 * screenshots while every DOM check still passes.
 *
 * `tsx scripts/lib/browser.ts` prints the browser it resolves;
 * `tsx scripts/lib/browser.ts --extract-to DIR` extracts the npm one into DIR.
 */
import { execFile } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createBrotliDecompress } from "node:zlib";
import { chromium as playwrightChromium, type Browser, type BrowserServer, type Page } from "playwright-core";
import { isEntryPoint, SetupError } from "./cli.ts";

export const DEBIAN_CHROMIUM = "/usr/bin/chromium";

/**
 * The arguments every launch uses. Without the background-networking ones
 * Chromium keeps dialling Google's hosts, which a closed network refuses.
 */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

type ChromiumSource = "CHROMIUM_PATH" | "debian" | "npm";

export interface ResolvedChromium {
  executablePath: string;
  source: ChromiumSource;
  /** Extra environment for the browser process (the npm build's font configuration). */
  env: Record<string, string>;
}

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The installed @sparticuz/chromium: its folder of compressed files and its version. */
function npmPackage(): { bin: string; version: string } {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve("@sparticuz/chromium");
  } catch {
    throw new SetupError("the npm Chromium (@sparticuz/chromium) is not installed: run `npm install`");
  }
  // The entry's depth varies by release (build/index.js, build/cjs/index.cjs) and the
  // exports map hides package.json, so walk up to the package's own package.json.
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const { name, version } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version: string };
    if (name === "@sparticuz/chromium") return { bin: join(dir, "bin"), version };
  }
  throw new SetupError(`no package.json of @sparticuz/chromium above ${entry}`);
}

/** Where the npm Chromium of the installed version is extracted by default. */
export function defaultExtractDir(): string {
  return join(PROJECT_ROOT, "node_modules", ".cache", `sparticuz-chromium-${npmPackage().version}`);
}

const PARTIAL = ".partial-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const partialName = (target: string) => `${target}${PARTIAL}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Deletes the partial folders of extractions whose process is gone
 * (interrupted). Each is first renamed to a name of this process, so two
 * processes never delete the same folder at once; best effort.
 */
async function removeAbandoned(target: string): Promise<void> {
  const parent = dirname(target);
  const prefix = `${target.slice(parent.length + 1)}${PARTIAL}`;
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    const claimed = partialName(target);
    try {
      await rename(join(parent, name), claimed);
      await rm(claimed, { recursive: true, force: true });
    } catch {
      // Another process claimed it first.
    }
  }
}

async function inflateFile(source: string, target: string): Promise<void> {
  await pipeline(createReadStream(source), createBrotliDecompress(), createWriteStream(target, { mode: 0o755 }));
}

/**
 * Unpacks a brotli-compressed tar into `dir` with the system's tar, from a
 * file: tar stops reading at the end-of-archive marker, so piping into it can
 * close the pipe under the writer.
 */
async function inflateTar(source: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const archive = join(dir, basename(source, ".br"));
  await inflateFile(source, archive);
  try {
    await promisify(execFile)("tar", ["-x", "--no-same-owner", "-f", archive, "-C", dir]);
  } finally {
    await rm(archive, { force: true });
  }
}

/**
 * Our own fontconfig file: the system's configuration (DejaVu on Debian) plus
 * the fonts the package ships (Open Sans), so text renders even on a machine
 * without fonts. The package's own fonts.conf points at AWS Lambda's folders.
 */
function fontsConf(dir: string): string {
  return `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>${join(dir, "fonts", "fonts")}</dir>
  <cachedir>${join(dir, "fontconfig-cache")}</cachedir>
</fontconfig>
`;
}

/**
 * Extracts the npm Chromium into `target` unless it is already there, and
 * returns `target`. Safe to call from several processes at once.
 */
async function extractNpmChromium(target = defaultExtractDir()): Promise<string> {
  if (existsSync(join(target, "chromium"))) return target;
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new SetupError(
      `the npm Chromium is built for linux x64, this is ${process.platform} ${process.arch}: set CHROMIUM_PATH to a Chromium binary`,
    );
  }
  const { bin } = npmPackage();
  await mkdir(dirname(target), { recursive: true });
  await removeAbandoned(target);
  const partial = partialName(target);
  try {
    await mkdir(partial);
    await Promise.all([
      inflateFile(join(bin, "chromium.br"), join(partial, "chromium")),
      inflateTar(join(bin, "swiftshader.tar.br"), partial),
      inflateTar(join(bin, "fonts.tar.br"), join(partial, "fonts")),
    ]);
    await writeFile(join(partial, "fonts.conf"), fontsConf(target));
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    // Another process renamed its complete copy into place first.
    if ((code === "ENOTEMPTY" || code === "EEXIST") && existsSync(join(target, "chromium"))) return target;
    throw error;
  }
  return target;
}

/** Which Chromium to drive, from the environment (see the module comment). */
export async function resolveChromium(env: NodeJS.ProcessEnv = process.env, extractDir?: string): Promise<ResolvedChromium> {
  if (env.CHROMIUM_PATH) {
    if (!existsSync(env.CHROMIUM_PATH)) throw new SetupError(`CHROMIUM_PATH=${env.CHROMIUM_PATH} does not exist`);
    return { executablePath: env.CHROMIUM_PATH, source: "CHROMIUM_PATH", env: {} };
  }
  const prefer = env.CHROMIUM_PREFER ?? "system";
  if (prefer !== "system" && prefer !== "npm") {
    throw new SetupError(`CHROMIUM_PREFER must be "system" or "npm", got ${JSON.stringify(prefer)}`);
  }
  if (prefer === "system" && existsSync(DEBIAN_CHROMIUM)) return { executablePath: DEBIAN_CHROMIUM, source: "debian", env: {} };
  const dir = await extractNpmChromium(extractDir);
  return { executablePath: join(dir, "chromium"), source: "npm", env: { FONTCONFIG_FILE: join(dir, "fonts.conf") } };
}

/**
 * How many pixels of a screenshot of `text` differ from its background. Zero
 * means the browser painted no glyphs (no usable font). The screenshot is
 * decoded by the page itself, so no PNG decoder is needed here.
 */
export async function paintedTextPixels(page: Page, text = "Patient P-0470 screams"): Promise<number> {
  await page.setContent(
    `<p id="probe" style="display:inline-block;margin:0;padding:8px;background:#fff;color:#000;font:32px sans-serif"></p>`,
  );
  await page.locator("#probe").evaluate((el, value) => (el.textContent = value), text);
  const png = await page.locator("#probe").screenshot();
  return page.evaluate(
    async (dataUrl) => {
      const image = new Image();
      image.src = dataUrl;
      await image.decode();
      const canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext("2d")!;
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200) painted++;
      return painted;
    },
    `data:image/png;base64,${png.toString("base64")}`,
  );
}

/** Fails loudly when `browser` paints no text (blank screenshots while every DOM check still passes). */
async function checkPaintsText(browser: Browser, executablePath: string): Promise<void> {
  const page = await browser.newPage();
  const painted = await paintedTextPixels(page);
  await page.close();
  if (painted === 0) {
    throw new SetupError(
      `Chromium (${executablePath}) paints no text, so screenshots would be blank: no font found ` +
        "(install fontconfig and fonts-dejavu-core, or set CHROMIUM_PREFER=npm for the npm build's fonts)",
    );
  }
}

/** Playwright's options for launching the resolved Chromium. */
async function launchOptions(env: NodeJS.ProcessEnv) {
  const resolved = await resolveChromium(env);
  return { executablePath: resolved.executablePath, args: CHROMIUM_ARGS, env: { ...env, ...resolved.env } };
}

/** Launches the resolved Chromium and checks that it paints text. */
export async function launchChromium(env: NodeJS.ProcessEnv = process.env): Promise<Browser> {
  const options = await launchOptions(env);
  const browser = await playwrightChromium.launch(options);
  try {
    await checkPaintsText(browser, options.executablePath);
  } catch (error) {
    await browser.close();
    throw error;
  }
  return browser;
}

/**
 * Launches the resolved Chromium as a server that several processes drive at
 * once (`connectChromium(server.wsEndpoint())`), checked to paint text like
 * `launchChromium`. The browser test files share one this way (tests/e2e/setup.ts).
 */
export async function launchChromiumServer(env: NodeJS.ProcessEnv = process.env): Promise<BrowserServer> {
  const options = await launchOptions(env);
  const server = await playwrightChromium.launchServer(options);
  try {
    const browser = await connectChromium(server.wsEndpoint());
    try {
      await checkPaintsText(browser, options.executablePath);
    } finally {
      await browser.close();
    }
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

/**
 * Connects to a `launchChromiumServer` browser. `close()` on the result
 * closes the contexts this connection opened and disconnects; the browser
 * itself stays up for the other connections.
 */
export function connectChromium(wsEndpoint: string): Promise<Browser> {
  return playwrightChromium.connect(wsEndpoint);
}

if (isEntryPoint(import.meta.url)) {
  const extractTo = process.argv.indexOf("--extract-to");
  const done =
    extractTo > 0
      ? extractNpmChromium(process.argv[extractTo + 1]).then((dir) => dir)
      : resolveChromium().then((resolved) => `${resolved.source}: ${resolved.executablePath}`);
  done.then(
    (line) => {
      process.stdout.write(`${line}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`browser: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
