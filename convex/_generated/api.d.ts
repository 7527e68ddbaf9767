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
import type * as bulkRetries from "../bulkRetries.js";
import type * as crons from "../crons.js";
import type * as lib_activity from "../lib/activity.js";
import type * as lib_adminFunctions from "../lib/adminFunctions.js";
import type * as lib_backfill from "../lib/backfill.js";
import type * as lib_backoff from "../lib/backoff.js";
import type * as lib_bulkRetry from "../lib/bulkRetry.js";
import type * as lib_caseFile from "../lib/caseFile.js";
import type * as lib_commands from "../lib/commands.js";
import type * as lib_config from "../lib/config.js";
import type * as lib_counts from "../lib/counts.js";
import type * as lib_crons from "../lib/crons.js";
import type * as lib_dispatch from "../lib/dispatch.js";
import type * as lib_jobs from "../lib/jobs.js";
import type * as lib_log from "../lib/log.js";
import type * as lib_machine from "../lib/machine.js";
import type * as lib_pacing from "../lib/pacing.js";
import type * as lib_queueControl from "../lib/queueControl.js";
import type * as lib_recovery from "../lib/recovery.js";
import type * as lib_recraft from "../lib/recraft.js";
import type * as lib_recraftModels from "../lib/recraftModels.js";
import type * as lib_redact from "../lib/redact.js";
import type * as lib_sha256 from "../lib/sha256.js";
import type * as lib_slots from "../lib/slots.js";
import type * as lib_storyRunMachine from "../lib/storyRunMachine.js";
import type * as lib_storyWriter from "../lib/storyWriter.js";
import type * as lib_tinify from "../lib/tinify.js";
import type * as lib_transitionRetry from "../lib/transitionRetry.js";
import type * as lib_voiceTypes from "../lib/voiceTypes.js";
import type * as portraits from "../portraits.js";
import type * as queueMetrics from "../queueMetrics.js";
import type * as stories from "../stories.js";
import type * as storyRuns from "../storyRuns.js";
import type * as tables from "../tables.js";
import type * as validators from "../validators.js";
import type * as voice from "../voice.js";

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
  bulkRetries: typeof bulkRetries;
  crons: typeof crons;
  "lib/activity": typeof lib_activity;
  "lib/adminFunctions": typeof lib_adminFunctions;
  "lib/backfill": typeof lib_backfill;
  "lib/backoff": typeof lib_backoff;
  "lib/bulkRetry": typeof lib_bulkRetry;
  "lib/caseFile": typeof lib_caseFile;
  "lib/commands": typeof lib_commands;
  "lib/config": typeof lib_config;
  "lib/counts": typeof lib_counts;
  "lib/crons": typeof lib_crons;
  "lib/dispatch": typeof lib_dispatch;
  "lib/jobs": typeof lib_jobs;
  "lib/log": typeof lib_log;
  "lib/machine": typeof lib_machine;
  "lib/pacing": typeof lib_pacing;
  "lib/queueControl": typeof lib_queueControl;
  "lib/recovery": typeof lib_recovery;
  "lib/recraft": typeof lib_recraft;
  "lib/recraftModels": typeof lib_recraftModels;
  "lib/redact": typeof lib_redact;
  "lib/sha256": typeof lib_sha256;
  "lib/slots": typeof lib_slots;
  "lib/storyRunMachine": typeof lib_storyRunMachine;
  "lib/storyWriter": typeof lib_storyWriter;
  "lib/tinify": typeof lib_tinify;
  "lib/transitionRetry": typeof lib_transitionRetry;
  "lib/voiceTypes": typeof lib_voiceTypes;
  portraits: typeof portraits;
  queueMetrics: typeof queueMetrics;
  stories: typeof stories;
  storyRuns: typeof storyRuns;
  tables: typeof tables;
  validators: typeof validators;
  voice: typeof voice;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
