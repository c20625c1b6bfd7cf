/**
 * Sandbox port adapter for Cloudflare Containers through the Sandbox SDK. Maps the SDK's
 * results onto the port and its errors onto retryable (platform) and final (job) failures.
 */
import { ContainerUnavailableError, type ISandbox, isPlatformTransientError, streamFile } from "@cloudflare/sandbox";
import {
  cancelledError,
  type ExecRequest,
  type ExecResult,
  type FileStream,
  type SandboxFileInfo,
  SandboxOperationError,
  type SandboxPort,
} from "./port";

/** The part of the SDK's sandbox stub this adapter uses; tests pass a fake with real result shapes. */
export type SdkSandbox = Pick<ISandbox, "exec" | "writeFile" | "readFileStream" | "deleteFile" | "listFiles">;

export interface CloudflareSandboxOptions {
  maxOutputBytes: number;
}

const textEncoder = new TextEncoder();

function capped(text: string, limit: number): { bytes: Uint8Array; truncated: boolean } {
  const bytes = textEncoder.encode(text);
  return bytes.byteLength > limit ? { bytes: bytes.slice(0, limit), truncated: true } : { bytes, truncated: false };
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** Maps any SDK failure onto a port error; `retryable` marks platform faults. */
export function toSandboxError(error: unknown, subject: string): SandboxOperationError {
  if (error instanceof SandboxOperationError) return error;
  const code = sdkErrorCode(error);
  if (code) {
    if (code === "FILE_NOT_FOUND")
      return new SandboxOperationError("FILE_NOT_FOUND", `File not found: ${subject}`, false, { cause: error });
    if (code === "IS_DIRECTORY")
      return new SandboxOperationError("IS_DIRECTORY", `${subject} is a directory, not a file`, false, { cause: error });
  }
  if (error instanceof ContainerUnavailableError || isPlatformTransientError(error)) {
    return new SandboxOperationError("SANDBOX_UNAVAILABLE", `Sandbox container unavailable: ${messageOf(error)}`, true, { cause: error });
  }
  return new SandboxOperationError("SANDBOX_ERROR", `Sandbox error on ${subject}: ${messageOf(error)}`, true, { cause: error });
}

/** The SDK's error code: its SandboxError class carries one but is not exported. */
function sdkErrorCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class CloudflareSandbox implements SandboxPort {
  constructor(
    private readonly sandbox: SdkSandbox,
    private readonly options: CloudflareSandboxOptions,
  ) {}

  async exec(request: ExecRequest): Promise<ExecResult> {
    let command = request.command;
    if (request.stdin !== undefined) {
      // The SDK's exec has no stdin: feed it from a private file instead.
      const stdinPath = `/tmp/.stdin-${crypto.randomUUID()}`;
      await this.sandbox.writeFile(stdinPath, request.stdin).catch((error: unknown) => {
        throw toSandboxError(error, stdinPath);
      });
      command = `sh -c ${shellQuote(request.command)} < ${stdinPath}; status=$?; rm -f ${stdinPath}; exit $status`;
    }
    const started = Date.now();
    try {
      const result = await this.sandbox.exec(command, {
        cwd: request.cwd,
        env: request.env,
        timeout: request.timeoutMs,
        ...(request.signal ? { signal: request.signal } : {}),
      });
      const stdout = capped(result.stdout, this.options.maxOutputBytes);
      const stderr = capped(result.stderr, this.options.maxOutputBytes);
      return {
        exitCode: result.exitCode,
        timedOut: false,
        durationMs: Date.now() - started,
        stdout: stdout.bytes,
        stderr: stderr.bytes,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      };
    } catch (error) {
      if (request.signal?.aborted) throw cancelledError();
      const elapsed = Date.now() - started;
      // The SDK throws on timeout instead of returning an exit code.
      if (!isPlatformTransientError(error) && elapsed >= request.timeoutMs * 0.95) {
        return {
          exitCode: null,
          timedOut: true,
          durationMs: elapsed,
          stdout: new Uint8Array(),
          stderr: new Uint8Array(),
          stdoutTruncated: false,
          stderrTruncated: false,
        };
      }
      throw toSandboxError(error, "exec");
    }
  }

  async writeFile(path: string, content: Uint8Array): Promise<void> {
    let binary = "";
    for (const byte of content) binary += String.fromCharCode(byte);
    await this.sandbox.writeFile(path, btoa(binary), { encoding: "base64" }).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
  }

  async readFile(path: string): Promise<FileStream> {
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    const entry = (await this.listFiles(dir, false)).find((file) => file.path === path);
    if (!entry) throw new SandboxOperationError("FILE_NOT_FOUND", `File not found: ${path}`, false);
    const sse = await this.sandbox.readFileStream(path).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
    // readFileStream is chunked, so files over the 32 MiB encoded-read limit still arrive whole.
    const chunks = streamFile(sse);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(typeof next.value === "string" ? textEncoder.encode(next.value) : next.value);
      },
    });
    return { size: entry.size, body };
  }

  async deleteFile(path: string): Promise<void> {
    await this.sandbox.deleteFile(path).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
  }

  async listFiles(dir: string, recursive = true): Promise<SandboxFileInfo[]> {
    const listing = await this.sandbox.listFiles(dir, { recursive, includeHidden: true }).catch((error: unknown) => {
      throw toSandboxError(error, dir);
    });
    return listing.files.filter((file) => file.type === "file").map((file) => ({ path: file.absolutePath, size: file.size }));
  }
}
