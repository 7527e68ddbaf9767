/**
 * The backend's one way to log: a leveled logger per source module, one JSON
 * line per event (`{"level","source","event",...fields}`), so a deployment's
 * log stream can be filtered by level, module and event. LOG_LEVEL (a Convex
 * environment variable: DEBUG, INFO, WARN, ERROR or OFF; default INFO) is read
 * at every call, so `npx convex env set LOG_LEVEL DEBUG` applies at once.
 * The test runner sets LOG_LEVEL=OFF; a test that checks a log line asks for it.
 */

const LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "OFF"] as const;
type LogLevel = (typeof LOG_LEVELS)[number];
const DEFAULT_LOG_LEVEL: LogLevel = "INFO";

type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/** LOG_LEVEL as a level; an unknown value falls back to the default. */
function logLevel(): LogLevel {
  const raw = process.env.LOG_LEVEL?.trim().toUpperCase();
  return LOG_LEVELS.find((level) => level === raw) ?? DEFAULT_LOG_LEVEL;
}

// Convex's dashboard and `npx convex logs` show the console method as the line's level.
const WRITERS: Record<Exclude<LogLevel, "OFF">, (line: string) => void> = {
  DEBUG: (line) => console.debug(line),
  INFO: (line) => console.log(line),
  WARN: (line) => console.warn(line),
  ERROR: (line) => console.error(line),
};

function write(level: Exclude<LogLevel, "OFF">, source: string, event: string, fields: LogFields = {}) {
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(logLevel())) return;
  WRITERS[level](JSON.stringify({ level, source, event, ...fields }));
}

/** A logger for one module, e.g. `const log = logger("portraits")`. */
export function logger(source: string): Logger {
  return {
    debug: (event, fields) => write("DEBUG", source, event, fields),
    info: (event, fields) => write("INFO", source, event, fields),
    warn: (event, fields) => write("WARN", source, event, fields),
    error: (event, fields) => write("ERROR", source, event, fields),
  };
}
