/**
 * Request bodies of the container API routes the agent serves, as the SDK client sends them
 * (packages/shared/src/request-types.ts). Unknown keys are ignored, like the real container does.
 */
import { z } from "zod";

/** The real container's path check: non-empty, no NUL byte, at most 4096 characters. */
export const SandboxPath = z
  .string()
  .min(1, "Path must be a non-empty string")
  .max(4096, "Path too long (max 4096 characters)")
  .refine((path) => !path.includes("\0"), "Path contains null bytes");

/** Env values may be undefined in the SDK's types; JSON turns those into absent keys or nulls. */
const EnvMap = z.record(z.string(), z.string().nullable().optional());
export type EnvMap = z.infer<typeof EnvMap>;

const SessionField = z.string().optional();

export const SessionCreateRequest = z.object({
  id: z.string().min(1).optional(),
  env: EnvMap.optional(),
  cwd: z.string().min(1).optional(),
  commandTimeoutMs: z.number().nonnegative().optional(),
});
export type SessionCreateRequest = z.infer<typeof SessionCreateRequest>;

export const SessionDeleteRequest = z.object({ sessionId: z.string().min(1, "sessionId is required") });

export const ExecuteRequest = z.object({
  command: z.string().min(1, "command is required"),
  sessionId: SessionField,
  timeoutMs: z.number().nonnegative().optional(),
  env: EnvMap.optional(),
  cwd: z.string().min(1).optional(),
  origin: z.enum(["user", "internal"]).optional(),
  background: z.boolean().optional(),
});
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

export const Encoding = z.enum(["utf-8", "utf8", "base64"]);

export const WriteFileRequest = z.object({
  path: SandboxPath,
  content: z.string(),
  sessionId: SessionField,
  encoding: Encoding.optional(),
});

export const ReadFileRequest = z.object({ path: SandboxPath, sessionId: SessionField, encoding: Encoding.optional() });

export const PathRequest = z.object({ path: SandboxPath, sessionId: SessionField });

export const MkdirRequest = PathRequest.extend({ recursive: z.boolean().optional() });

export const RenameRequest = z.object({ oldPath: SandboxPath, newPath: SandboxPath, sessionId: SessionField });

export const MoveRequest = z.object({ sourcePath: SandboxPath, destinationPath: SandboxPath, sessionId: SessionField });

export const ListFilesRequest = PathRequest.extend({
  options: z.object({ recursive: z.boolean().optional(), includeHidden: z.boolean().optional() }).optional(),
});
