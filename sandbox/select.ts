/**
 * Chooses the sandbox adapter from configuration: `cloudflare` when deployed, `local` in
 * `npm run dev` and the tests. Nothing else in the Worker knows which one it has.
 */
import { getSandbox } from "@cloudflare/sandbox";
import { CloudflareSandbox } from "./cloudflare";
import { LocalSandbox } from "./local";
import { SandboxOperationError, type SandboxPort } from "./port";

/** Bytes kept of each of stdout and stderr; larger output is cut and marked truncated. */
export const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export type SandboxFactory = (sandboxId: string) => SandboxPort;

/**
 * A misconfigured backend fails each job with a message that says what to fix (not retried:
 * retrying cannot fix configuration), instead of failing whole batches.
 */
function misconfigured(message: string): SandboxFactory {
  return () => {
    throw new SandboxOperationError("SANDBOX_ERROR", `Sandbox backend misconfigured: ${message}`, false);
  };
}

export function sandboxFactory(env: Env): SandboxFactory {
  if (env.SANDBOX_BACKEND === "local") {
    if (!env.LOCAL_SANDBOX_TOKEN) return misconfigured("SANDBOX_BACKEND is local but LOCAL_SANDBOX_TOKEN is not set");
    const host = { url: env.LOCAL_SANDBOX_URL, token: env.LOCAL_SANDBOX_TOKEN };
    return (sandboxId) => new LocalSandbox(host, sandboxId);
  }
  if (env.SANDBOX_BACKEND === "cloudflare") {
    return (sandboxId) => new CloudflareSandbox(getSandbox(env.Sandbox, sandboxId), { maxOutputBytes: MAX_OUTPUT_BYTES });
  }
  return misconfigured(`SANDBOX_BACKEND must be "cloudflare" or "local", not "${env.SANDBOX_BACKEND}"`);
}
