/**
 * Turns SDK failures, as they arrive across RPC from the Sandbox Durable Object, into port
 * errors: a job's own failure (a missing file) is final; a platform fault is retried; a
 * deployment that cannot start containers at all fails at once with what to fix.
 */
import { isPlatformTransientError } from "@cloudflare/sandbox";
import { SandboxOperationError } from "./port";

// Across RPC an SDK error arrives as a plain Error whose message starts with its class name
// ("FileNotFoundError: File not found: /x"); its code does not survive. The phrases below are
// the containers library's and workerd's own.
const CONTAINERS_DISABLED = /Containers have not been enabled/i;
const READ_ONLY = /\bEROFS\b|read-only file system/i;
const NO_SPACE = /\bENOSPC\b|no space left on device/i;
const NO_CONTAINER = /no container instance|container is not listening|container exited|Container did not start|container is starting/i;

/** The SDK's error code when the error still carries it (same realm), else its class name from the message. */
function sdkErrorKind(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string") return error.code;
  return /^(\w+Error): /.exec(messageOf(error))?.[1];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps any SDK failure onto a port error; `retryable` marks platform faults. */
export function toSandboxError(error: unknown, subject: string): SandboxOperationError {
  if (error instanceof SandboxOperationError) return error;
  const kind = sdkErrorKind(error);
  const message = messageOf(error);
  if (kind === "FILE_NOT_FOUND" || kind === "FileNotFoundError") {
    return new SandboxOperationError("FILE_NOT_FOUND", `File not found: ${subject}`, false, { cause: error });
  }
  if (kind === "IS_DIRECTORY" || (kind === "FileSystemError" && /directory/i.test(message))) {
    return new SandboxOperationError("IS_DIRECTORY", `${subject} is a directory, not a file`, false, { cause: error });
  }
  if (kind === "PERMISSION_DENIED" || kind === "PermissionDeniedError") {
    return new SandboxOperationError("PERMISSION_DENIED", `Permission denied in the sandbox on ${subject}: ${message}`, false, {
      cause: error,
    });
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
  if (
    kind === "CONTAINER_UNAVAILABLE" ||
    kind === "ContainerUnavailableError" ||
    NO_CONTAINER.test(message) ||
    isPlatformTransientError(error)
  ) {
    return new SandboxOperationError("SANDBOX_UNAVAILABLE", `No container could start for the sandbox: ${message}`, true, { cause: error });
  }
  // The container's own file system said no for good: trying again would get the same answer.
  if (READ_ONLY.test(message)) {
    return new SandboxOperationError("PERMISSION_DENIED", `${subject} is on a read-only file system in the sandbox: ${message}`, false, {
      cause: error,
    });
  }
  if (NO_SPACE.test(message)) {
    return new SandboxOperationError("SANDBOX_ERROR", `No space left in the sandbox for ${subject}: ${message}`, false, { cause: error });
  }
  return new SandboxOperationError("SANDBOX_ERROR", `Sandbox error on ${subject}: ${message}`, true, { cause: error });
}

/**
 * Cloudflare's refusal to start a container past the class's `max_instances`. Recognised by its
 * text anywhere on the error or its causes (it survives RPC and the SDK's wrappers only as
 * text), or by the SDK's reason `max_container_instances_exceeded`; the local container host's
 * cap says the same (sandbox/localContainer.ts).
 */
const CAPACITY_REACHED = /maximum number of running container instances exceeded/i;

export function isContainerCapacityError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (CAPACITY_REACHED.test(messageOf(current))) return true;
    if (typeof current !== "object") return false;
    if ("context" in current && typeof current.context === "object" && current.context !== null) {
      if ("reason" in current.context && current.context.reason === "max_container_instances_exceeded") return true;
    }
    current = "cause" in current ? current.cause : undefined;
  }
  return false;
}
