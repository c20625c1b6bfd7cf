/**
 * Typed settings read from the Worker's vars (wrangler.jsonc). One place parses them so a bad
 * value fails loudly instead of turning into NaN somewhere deep.
 */
import { z } from "zod";

const PositiveInt = z.coerce.number().int().positive();

const ConfigVars = z.object({
  RETENTION_DAYS: PositiveInt,
  ARTIFACT_MAX_FILES: PositiveInt,
  ARTIFACT_MAX_TOTAL_BYTES: PositiveInt,
  MAX_JOB_ATTEMPTS: PositiveInt,
  OUTPUT_MAX_BYTES: PositiveInt,
  WORKSPACE_PERSISTENCE: z.enum(["on", "off"]),
});

export interface AppConfig {
  retentionSeconds: number;
  artifactMaxFiles: number;
  artifactMaxTotalBytes: number;
  maxJobAttempts: number;
  /** Bytes kept of each of stdout and stderr: the head and the tail, the middle of larger output dropped. */
  outputMaxBytes: number;
  /** Save /workspace to R2 before a container sleeps and restore it into a fresh one. */
  persistWorkspace: boolean;
}

// The vars of one Worker isolate do not change: parse them once, not on every request.
const parsed = new WeakMap<Env, AppConfig>();

export function readConfig(env: Env): AppConfig {
  const cached = parsed.get(env);
  if (cached) return cached;
  const config = parseConfig(env);
  parsed.set(env, config);
  return config;
}

function parseConfig(env: Env): AppConfig {
  const vars = ConfigVars.parse(env);
  return {
    retentionSeconds: vars.RETENTION_DAYS * 24 * 60 * 60,
    artifactMaxFiles: vars.ARTIFACT_MAX_FILES,
    artifactMaxTotalBytes: vars.ARTIFACT_MAX_TOTAL_BYTES,
    maxJobAttempts: vars.MAX_JOB_ATTEMPTS,
    outputMaxBytes: vars.OUTPUT_MAX_BYTES,
    persistWorkspace: vars.WORKSPACE_PERSISTENCE === "on",
  };
}
