/**
 * The one interface the job runner uses to reach a sandbox, implemented by `sdkSandbox.ts` over the
 * Cloudflare Sandbox SDK (locally too). It keeps the runner's code free of SDK details.
 */
import type { CapturedOutput } from "./cappedOutput";

export interface ExecRequest {
  command: string;
  /** Absolute path inside /workspace. */
  cwd: string;
  env: Record<string, string>;
  stdin?: string;
  timeoutMs: number;
  /** Aborting it (the job was cancelled) ends the command; exec then throws a CancelledError with its output so far. */
  signal?: AbortSignal;
  /**
   * Called with each piece of output as the command writes it (live logs), its bytes as written
   * (a character may be split between pieces). `skippedBefore` bytes of the stream came right
   * before these and were left unread (past the kept head).
   */
  onOutput?: (stream: "stdout" | "stderr", bytes: Uint8Array, skippedBefore?: number) => void;
}

export interface ExecResult {
  /** Null when the command was killed on timeout. */
  exitCode: number | null;
  /** The signal that killed the command (exit code 128 + its number), e.g. "SIGSEGV"; else null. */
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  stdout: CapturedOutput;
  stderr: CapturedOutput;
}

export interface SandboxFileInfo {
  /** Absolute path inside /workspace. */
  path: string;
  size: number;
  /** Undefined for a regular file; else what the container calls it ("symlink", "other"). */
  notRegular?: string;
}

export interface FileStream {
  size: number;
  /** Permission bits (0o755 for an executable script), as the container lists them. */
  mode: number;
  body: ReadableStream<Uint8Array>;
}

export interface SandboxPort {
  /** Before a job: a container that started fresh gets the sandbox's saved workspace back. */
  prepareWorkspace(): Promise<void>;
  exec(request: ExecRequest): Promise<ExecResult>;
  writeFile(path: string, content: Uint8Array): Promise<void>;
  /** Streams the file so files beyond the SDK's 32 MiB encoded limit still arrive whole. */
  readFile(path: string): Promise<FileStream>;
  deleteFile(path: string): Promise<void>;
  /** Writes a file of any size from a stream, in pieces (the SDK's writes take whole strings). */
  writeFileFromStream(path: string, body: ReadableStream<Uint8Array>): Promise<void>;
  /** Sets a file's permission bits (octal, such as "755"). */
  setMode(path: string, mode: string): Promise<void>;
  /** Runs a short housekeeping command (not a job's), failing on a non-zero exit. */
  run(command: string): Promise<{ stdout: string; stderr: string }>;
  /** Ends every command running in the sandbox, with its process tree (a job runs alone in its sandbox). */
  endCommands(): Promise<void>;
  /** As endCommands, for a runner that died: a sandbox whose container is not running has none, and none is started. */
  endStaleCommands(): Promise<void>;
  /** Empties the workspace and stops the container: what deleting a sandbox (or its idle expiry) does. */
  destroy(): Promise<void>;
  /** Stops the container as sleeping does (the workspace kept), to free its slot for another sandbox. */
  stopContainer(): Promise<void>;
  /** Everything but directories below `dir`, recursively. */
  listFiles(dir: string): Promise<SandboxFileInfo[]>;
}

/**
 * A failure reaching or using a sandbox. `retryable` separates platform faults (retry with
 * backoff) from the job's own failures (a missing file is final).
 */
export type SandboxErrorCode =
  | "FILE_NOT_FOUND"
  | "PATH_REFUSED"
  | "IS_DIRECTORY"
  /** The sandbox's own permissions refused a file operation: the job's doing, so never tried again. */
  | "PERMISSION_DENIED"
  | "SANDBOX_UNAVAILABLE"
  | "SANDBOX_ERROR"
  | "CANCELLED"
  /** Every container the account may run is running: the job waits for one (not one of its attempts). */
  | "CONTAINER_CAPACITY"
  /** The workspace could not be saved before its container stopped: a fresh one has an older save, or none. */
  | "WORKSPACE_LOST"
  /** The tenant's sandboxes hold its TENANT_MAX_CONTAINERS containers, each running a job: the job waits likewise. */
  | "TENANT_CONTAINER_CAP";

export class SandboxOperationError extends Error {
  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SandboxOperationError";
  }
}

/**
 * The sandbox's container went away while a command ran (it stopped answering, or its server
 * failed round trip after round trip; a command may stop or kill every process in its container):
 * final, since running it again would likely do the same, with what it wrote until then.
 */
export class CommandLostError extends SandboxOperationError {
  constructor(
    message: string,
    readonly partial: ExecResult,
  ) {
    super("SANDBOX_ERROR", message, false);
    this.name = "CommandLostError";
  }
}

/** A command ended by a cancel; `partial` is what it wrote until then, when there was a command. */
export class CancelledError extends SandboxOperationError {
  constructor(readonly partial?: ExecResult) {
    super("CANCELLED", "The job was cancelled while it ran; its command was ended", false);
    this.name = "CancelledError";
  }
}
