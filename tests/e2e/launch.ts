/**
 * The one place this project's operator e2e tests launch a browser: Debian's
 * Chromium (or CHROMIUM_PATH) through playwright-core. Replace this function
 * to provision Chromium another way; the tests only call launchBrowser().
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium is not installed at ${executablePath}: install Debian's package with \`apt-get install -y chromium\` (or point CHROMIUM_PATH at a Chromium binary).`);
  }
  return chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
