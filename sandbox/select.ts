/**
 * Opens the sandbox port for a sandbox ID: the SDK's stub for the sandbox's Durable Object,
 * the same call deployed and local (see sandboxObject.ts for the one local difference).
 */
import { getSandbox } from "@cloudflare/sandbox";
import { readConfig } from "../config";
import type { SandboxPort } from "./port";
import { SdkSandbox } from "./sdkSandbox";

export type SandboxFactory = (sandboxId: string) => SandboxPort;

export function sandboxFactory(env: Env): SandboxFactory {
  const { outputMaxBytes, sandboxAnswerTimeoutMs } = readConfig(env);
  return (sandboxId) => new SdkSandbox(getSandbox(env.Sandbox, sandboxId), outputMaxBytes, sandboxAnswerTimeoutMs);
}
