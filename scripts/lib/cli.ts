/** Flag parsing shared by the demo and the bench: a bad flag is one line and exit code 2. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { pathToFileURL } from "node:url";

export class UsageError extends Error {}

/** Something the machine is missing (an install or build step): one line saying what to run. */
export class SetupError extends Error {}

export function parseFlags<O extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // node:util's messages are long and mention internals; keep the first sentence.
    throw new UsageError((error as Error).message.split(". ")[0]!.replace(/^Unknown option '(.+)'$/, "unknown option $1"));
  }
}

export function intFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function fractionFlag(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`--${name} must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  isTTY: boolean;
}

const processIo = (): Io => ({ stdout: process.stdout, stderr: process.stderr, isTTY: !!process.stdout.isTTY });

/** True when `moduleUrl` is the script Node was started with. */
export const isEntryPoint = (moduleUrl: string) => !!process.argv[1] && moduleUrl === pathToFileURL(process.argv[1]).href;

/**
 * Runs a CLI main and exits with its code. Exits explicitly: the embedded
 * backend's scheduler may still hold timers (e.g. a dispatcher wakeup).
 */
export function runCli(name: string, main: (argv: string[], io: Io) => Promise<number>) {
  main(process.argv.slice(2), processIo()).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const text = error instanceof SetupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`${name}: ${text}\n`);
      process.exit(1);
    },
  );
}
