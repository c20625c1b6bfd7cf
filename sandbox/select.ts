/**
 * Opens the sandbox port for a sandbox ID: the SDK's stub for the sandbox's Durable Object,
 * the same call deployed and local (see sandboxObject.ts for the one local difference).
 */
import { getSandbox } from "@cloudflare/sandbox";
import type { SandboxPort } from "./port";
import { SdkSandbox } from "./sdkSandbox";

/** Bytes kept of each of stdout and stderr (head and tail); the middle of larger output is dropped. */
export const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export type SandboxFactory = (sandboxId: string) => SandboxPort;

export function sandboxFactory(env: Env): SandboxFactory {
  return (sandboxId) => new SdkSandbox(getSandbox(env.Sandbox, sandboxId), MAX_OUTPUT_BYTES);
}
