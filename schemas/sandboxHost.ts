/**
 * The Front HTTP API of the local container host (container/local): the contract between the
 * Worker's stand-in for workerd's container handle and the host. Shared by both sides.
 */
import { z } from "zod";

/** A container's key: the sandbox ID, which also names its workspace directory on the host. */
// A sandbox key, `{tenant}.{sandboxId}` (storage/layout.ts): the name the SDK gives the container.
export const ContainerKey = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, "Container key must be 1-63 characters of a-z, 0-9, '.' and '-'")
  .refine((key) => !key.includes(".."), "Container key must not contain '..'");
export type ContainerKey = z.infer<typeof ContainerKey>;

/** The only port a local container listens on: the agent's copy of the SDK container API. */
export const AGENT_PORT = 3000;

export const StartContainerRequest = z.object({
  env: z.record(z.string(), z.string()).optional(),
  enableInternet: z.boolean().optional(),
});
export type StartContainerRequest = z.infer<typeof StartContainerRequest>;

export const ContainerState = z.object({ running: z.boolean() });
export type ContainerState = z.infer<typeof ContainerState>;

export const ContainerExit = z.object({ exitCode: z.number().int() });
export type ContainerExit = z.infer<typeof ContainerExit>;

export const SignalRequest = z.object({ signal: z.number().int().min(1).max(64) });
export type SignalRequest = z.infer<typeof SignalRequest>;

/**
 * Error codes the host answers with, in one JSON shape: `{ error: { code, message } }`.
 * MAX_CONTAINERS: a start past the host's cap (SANDBOX_MAX_CONTAINERS), as past `max_instances`.
 */
export const HostErrorCode = z.enum([
  "START_FAILED",
  "MAX_CONTAINERS",
  "NOT_LISTENING",
  "BAD_REQUEST",
  "NOT_FOUND",
  "UNAUTHORIZED",
  "INTERNAL",
]);
export type HostErrorCode = z.infer<typeof HostErrorCode>;
export const HostError = z.object({ error: z.object({ code: HostErrorCode, message: z.string() }) });
export type HostError = z.infer<typeof HostError>;
