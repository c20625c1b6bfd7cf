/**
 * Answers of the API that are not job records: the error body, sandboxes, and the live log's
 * events. The routes declare them and the client (client/) parses every answer with them, so a
 * change here reaches both sides at once.
 */
import { z } from "@hono/zod-openapi";
import { JobError, JobStatus } from "./job";

/** Every error the API answers: `{ "error": { "code", "message", "details"? } }`. */
export const ErrorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .openapi("Error");
export type ErrorBody = z.infer<typeof ErrorBody>;

export const SandboxView = z
  .object({
    sandboxId: z.string(),
    createdAt: z.string(),
    /** When a job was last submitted to it; the idle expiry counts from here. */
    lastActiveAt: z.string(),
    /** When it will be destroyed if nothing is submitted to it meanwhile. */
    expiresAt: z.string(),
    /** Size of its saved workspace (deployed, saved when its container sleeps); null when none is saved. */
    savedWorkspaceBytes: z.number().int().nullable(),
  })
  .openapi("Sandbox");
export type SandboxView = z.infer<typeof SandboxView>;

export const SandboxList = z.object({ sandboxes: z.array(SandboxView) });
export type SandboxList = z.infer<typeof SandboxList>;

export const DeletedSandbox = z.object({ sandboxId: z.string(), deleted: z.boolean(), cancelledJobs: z.number().int() });
export type DeletedSandbox = z.infer<typeof DeletedSandbox>;

/** `data` of a log stream's `stdout` and `stderr` events. */
export const LogTextData = z.object({ text: z.string() });
export type LogTextData = z.infer<typeof LogTextData>;
/** `data` of a `gap` event: a follower too far behind missed this many bytes of one stream. */
export const LogGapData = z.object({ stream: z.enum(["stdout", "stderr"]), droppedBytes: z.number().int() });
export type LogGapData = z.infer<typeof LogGapData>;
/** `data` of the `status` event that ends a finished job's log stream. */
export const LogStatusData = z.object({ status: JobStatus, exitCode: z.number().int().nullable(), error: JobError.nullable() });
export type LogStatusData = z.infer<typeof LogStatusData>;
