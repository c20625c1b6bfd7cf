/**
 * Turns SDK failures, as they arrive across RPC from the Sandbox Durable Object, into port
 * errors: a job's own failure (a missing file) is final; a platform fault is retried; a
 * deployment that cannot start containers at all fails at once with what to fix.
 */
import { isPlatformTransientError } from "@cloudflare/sandbox";
import { SandboxOperationError } from "./port";

// Across RPC an error keeps its message, not its class; these phrases are the containers
// library's and workerd's own, matched as a fallback to the SDK's error code.
const CONTAINERS_DISABLED = /Containers have not been enabled/i;
const NO_CONTAINER = /no container instance|container is not listening|container exited|Container did not start|container is starting/i;

/** The SDK's error code, when the error still carries it. */
function sdkErrorCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps any SDK failure onto a port error; `retryable` marks platform faults. */
export function toSandboxError(error: unknown, subject: string): SandboxOperationError {
  if (error instanceof SandboxOperationError) return error;
  const code = sdkErrorCode(error);
  const message = messageOf(error);
  if (code === "FILE_NOT_FOUND" || /^File not found/i.test(message)) {
    return new SandboxOperationError("FILE_NOT_FOUND", `File not found: ${subject}`, false, { cause: error });
  }
  if (code === "IS_DIRECTORY" || /is a directory/i.test(message)) {
    return new SandboxOperationError("IS_DIRECTORY", `${subject} is a directory, not a file`, false, { cause: error });
  }
  if (CONTAINERS_DISABLED.test(message)) {
    // Configuration, not a passing fault: retrying cannot start a container here.
    return new SandboxOperationError(
      "SANDBOX_UNAVAILABLE",
      "No container could start: this Worker runs without Cloudflare Containers (wrangler dev with containers disabled) " +
        "and without a local container host. Use `npm run dev`, or deploy to Cloudflare.",
      false,
      { cause: error },
    );
  }
  if (code === "CONTAINER_UNAVAILABLE" || NO_CONTAINER.test(message) || isPlatformTransientError(error)) {
    return new SandboxOperationError("SANDBOX_UNAVAILABLE", `No container could start for the sandbox: ${message}`, true, { cause: error });
  }
  return new SandboxOperationError("SANDBOX_ERROR", `Sandbox error on ${subject}: ${message}`, true, { cause: error });
}
