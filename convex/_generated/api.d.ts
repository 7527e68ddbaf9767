/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";
import type * as admin from "../admin.js";
import type * as crons from "../crons.js";
import type * as lib_activity from "../lib/activity.js";
import type * as lib_adminFunctions from "../lib/adminFunctions.js";
import type * as lib_backfill from "../lib/backfill.js";
import type * as lib_backoff from "../lib/backoff.js";
import type * as lib_caseFile from "../lib/caseFile.js";
import type * as lib_config from "../lib/config.js";
import type * as lib_counts from "../lib/counts.js";
import type * as lib_crons from "../lib/crons.js";
import type * as lib_dispatch from "../lib/dispatch.js";
import type * as lib_jobs from "../lib/jobs.js";
import type * as lib_log from "../lib/log.js";
import type * as lib_recovery from "../lib/recovery.js";
import type * as lib_recraft from "../lib/recraft.js";
import type * as lib_recraftModels from "../lib/recraftModels.js";
import type * as lib_redact from "../lib/redact.js";
import type * as lib_sha256 from "../lib/sha256.js";
import type * as lib_storyRunMachine from "../lib/storyRunMachine.js";
import type * as lib_storyWriter from "../lib/storyWriter.js";
import type * as portraits from "../portraits.js";
import type * as stories from "../stories.js";
import type * as storyRuns from "../storyRuns.js";
import type * as tables from "../tables.js";
import type * as validators from "../validators.js";

/**
 * A utility for referencing Convex functions in your app's API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
declare const fullApi: ApiFromModules<{
  admin: typeof admin;
  crons: typeof crons;
  "lib/activity": typeof lib_activity;
  "lib/adminFunctions": typeof lib_adminFunctions;
  "lib/backfill": typeof lib_backfill;
  "lib/backoff": typeof lib_backoff;
  "lib/caseFile": typeof lib_caseFile;
  "lib/config": typeof lib_config;
  "lib/counts": typeof lib_counts;
  "lib/crons": typeof lib_crons;
  "lib/dispatch": typeof lib_dispatch;
  "lib/jobs": typeof lib_jobs;
  "lib/log": typeof lib_log;
  "lib/recovery": typeof lib_recovery;
  "lib/recraft": typeof lib_recraft;
  "lib/recraftModels": typeof lib_recraftModels;
  "lib/redact": typeof lib_redact;
  "lib/sha256": typeof lib_sha256;
  "lib/storyRunMachine": typeof lib_storyRunMachine;
  "lib/storyWriter": typeof lib_storyWriter;
  portraits: typeof portraits;
  stories: typeof stories;
  storyRuns: typeof storyRuns;
  tables: typeof tables;
  validators: typeof validators;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
