/**
 * The browser the e2e tests and screenshot scripts launch (scripts/lib/browser.ts):
 * it paints text, keeps the same-origin policy, and the npm build extracts
 * safely when workers race or an extraction is killed half way.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, test } from "vitest";
import { DEBIAN_CHROMIUM, defaultExtractDir, launchChromium, paintedTextPixels, resolveChromium } from "../../scripts/lib/browser";

const SCRIPT = "scripts/lib/browser.ts";
const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "browser-test-"));
  scratch.push(dir);
  return dir;
}

const npmEnv = { ...process.env, CHROMIUM_PATH: undefined, CHROMIUM_PREFER: "npm" };

describe("which Chromium", () => {
  test("CHROMIUM_PATH wins, then Debian's unless CHROMIUM_PREFER=npm, then the npm build", async () => {
    const npm = await resolveChromium(npmEnv);
    expect(npm).toEqual({
      executablePath: join(defaultExtractDir(), "chromium"),
      source: "npm",
      env: { FONTCONFIG_FILE: join(defaultExtractDir(), "fonts.conf") },
    });
    expect(await resolveChromium({ ...npmEnv, CHROMIUM_PATH: npm.executablePath })).toEqual({
      executablePath: npm.executablePath,
      source: "CHROMIUM_PATH",
      env: {},
    });
    const fallback = await resolveChromium({ ...process.env, CHROMIUM_PATH: undefined, CHROMIUM_PREFER: undefined });
    expect(fallback.source).toBe(existsSync(DEBIAN_CHROMIUM) ? "debian" : "npm");
    await expect(resolveChromium({ CHROMIUM_PATH: "/nowhere/chromium" })).rejects.toThrow("CHROMIUM_PATH=/nowhere/chromium does not exist");
    await expect(resolveChromium({ CHROMIUM_PREFER: "apt" })).rejects.toThrow('CHROMIUM_PREFER must be "system" or "npm", got "apt"');
  });
});

describe("what it renders", () => {
  test("each available Chromium paints text in screenshots", async () => {
    const envs = existsSync(DEBIAN_CHROMIUM) ? [npmEnv, { ...npmEnv, CHROMIUM_PREFER: "system" }] : [npmEnv];
    for (const env of envs) {
      const browser = await launchChromium(env);
      try {
        const page = await browser.newPage();
        expect(await paintedTextPixels(page)).toBeGreaterThan(200);
        expect(await paintedTextPixels(page, "")).toBe(0);
      } finally {
        await browser.close();
      }
    }
  }, 60_000);

  test("with no font the launch fails instead of taking blank screenshots; the npm build's own fonts suffice", async () => {
    const { executablePath } = await resolveChromium(npmEnv);
    const dir = await scratchDir();
    const noFonts = join(dir, "none.conf");
    await writeFile(noFonts, `<?xml version="1.0"?>\n<fontconfig><cachedir>${dir}/cache</cachedir></fontconfig>\n`);
    await expect(launchChromium({ ...npmEnv, CHROMIUM_PATH: executablePath, FONTCONFIG_FILE: noFonts })).rejects.toThrow(
      /paints no text, so screenshots would be blank/,
    );

    // A machine without system fonts: only the Open Sans the package ships.
    const onlyShipped = join(dir, "shipped.conf");
    const shippedFonts = join(defaultExtractDir(), "fonts", "fonts");
    await writeFile(
      onlyShipped,
      `<?xml version="1.0"?>\n<fontconfig><dir>${shippedFonts}</dir><cachedir>${dir}/cache</cachedir></fontconfig>\n`,
    );
    const browser = await launchChromium({ ...npmEnv, CHROMIUM_PATH: executablePath, FONTCONFIG_FILE: onlyShipped });
    try {
      const page = await browser.newPage();
      expect(await paintedTextPixels(page)).toBeGreaterThan(200);
      // The project's fontconfig file offers the shipped Open Sans beside the system's fonts.
      await page.close();
      const configured = await launchChromium(npmEnv);
      const widths = await (
        await configured.newPage()
      ).evaluate(() => {
        const span = document.body.appendChild(document.createElement("span"));
        span.textContent = "iiiiiiii";
        const width = (font: string) => ((span.style.font = font), span.getBoundingClientRect().width);
        return { openSans: width('20px "Open Sans", monospace'), monospace: width("20px monospace") };
      });
      await configured.close();
      expect(widths.openSans).toBeGreaterThan(0);
      expect(widths.openSans).toBeLessThan(widths.monospace * 0.6);
    } finally {
      await browser.close();
    }
    expect(await readFile(join(defaultExtractDir(), "fonts.conf"), "utf8")).toContain(
      '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>',
    );
  }, 60_000);

  test("pages keep the same-origin policy: a cross-origin fetch needs CORS headers", async () => {
    const listen = (server: Server) =>
      new Promise<string>((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
      );
    const page = createServer((_, res) => res.end("<!doctype html><title>ward</title>"));
    const api = createServer((req, res) => {
      if (req.url === "/open") res.setHeader("Access-Control-Allow-Origin", "*");
      res.end("chart");
    });
    const [pageUrl, apiUrl] = await Promise.all([listen(page), listen(api)]);
    const browser = await launchChromium(npmEnv);
    try {
      const tab = await browser.newPage();
      await tab.goto(pageUrl);
      const fetchFrom = (url: string) =>
        tab.evaluate(
          (target) =>
            fetch(target).then(
              (r) => r.text(),
              (e: Error) => `refused: ${e.name}`,
            ),
          url,
        );
      expect(await fetchFrom(`${apiUrl}/closed`)).toBe("refused: TypeError");
      expect(await fetchFrom(`${apiUrl}/open`)).toBe("chart");
    } finally {
      await browser.close();
      page.close();
      api.close();
    }
  }, 60_000);
});

describe("extracting the npm build", () => {
  const extract = (dir: string) =>
    spawn(process.execPath, ["--import", "tsx", SCRIPT, "--extract-to", dir], { stdio: ["ignore", "pipe", "pipe"] });
  const output = (child: ReturnType<typeof extract>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk));
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk));
      child.once("close", (code) => resolve({ code, stdout, stderr }));
    });

  test("an interrupted extraction is cleaned up; workers racing all get one complete copy", async () => {
    const parent = await scratchDir();
    const target = join(parent, "chromium-under-test");

    // Kill an extraction once it has written part of the binary.
    const killed = extract(target);
    const killedExit = output(killed);
    const partial = join(parent, `chromium-under-test.partial-${killed.pid}`);
    let exited = false;
    void killedExit.then(() => (exited = true));
    for (;;) {
      const name = (await readdir(parent)).find((entry) => entry.startsWith(partial.slice(parent.length + 1)));
      if (name && existsSync(join(parent, name, "chromium")) && statSync(join(parent, name, "chromium")).size > 0) break;
      if (exited) throw new Error(`the extraction ended before it could be interrupted: ${JSON.stringify(await killedExit)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    killed.kill("SIGKILL");
    await killedExit;
    expect(existsSync(target)).toBe(false);
    expect((await readdir(parent)).filter((name) => name.includes(".partial-"))).toHaveLength(1);

    const racers = await Promise.all([extract(target), extract(target), extract(target)].map(output));
    for (const racer of racers) expect(racer).toEqual({ code: 0, stdout: `${target}\n`, stderr: "" });
    expect(await readdir(parent)).toEqual(["chromium-under-test"]);
    const { stdout } = await promisify(execFile)(join(target, "chromium"), ["--version"]);
    expect(stdout).toMatch(/^Chromium 147\./);
    expect((await readdir(target)).sort()).toEqual([
      "chromium",
      "fonts",
      "fonts.conf",
      "libEGL.so",
      "libGLESv2.so",
      "libvk_swiftshader.so",
      "libvulkan.so.1",
      "vk_swiftshader_icd.json",
    ]);
  }, 120_000);
});
