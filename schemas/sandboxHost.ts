/**
 * The wire protocol between the Worker's local sandbox adapter and the local sandbox host
 * (container/local). Bytes travel as base64 in JSON for exec, and as raw bodies for files.
 */
import { z } from "zod";
import { MAX_TIMEOUT_MS } from "./job";

export const HostExecRequest = z.object({
  command: z.string().min(1),
  cwd: z.string(),
  env: z.record(z.string(), z.string()).default({}),
  stdin: z.string().optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS),
  network: z.boolean().default(false),
});
export type HostExecRequest = z.input<typeof HostExecRequest>;

export const HostExecResult = z.object({
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  durationMs: z.number().int(),
  stdoutBase64: z.string(),
  stderrBase64: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
});
export type HostExecResult = z.infer<typeof HostExecResult>;

export const HostFileEntry = z.object({ path: z.string(), size: z.number().int() });
export const HostListResult = z.object({ files: z.array(HostFileEntry) });
export type HostListResult = z.infer<typeof HostListResult>;

/** Error codes the host answers with; the adapter maps them onto sandbox port errors. */
export const HostErrorCode = z.enum(["FILE_NOT_FOUND", "PATH_REFUSED", "IS_DIRECTORY", "BAD_REQUEST", "UNAUTHORIZED", "INTERNAL"]);
export type HostErrorCode = z.infer<typeof HostErrorCode>;
export const HostError = z.object({ error: z.object({ code: HostErrorCode, message: z.string() }) });
export type HostError = z.infer<typeof HostError>;
