/**
 * The sandbox port over the Cloudflare Sandbox SDK: the only adapter, deployed and local alike.
 * Every call is RPC into the sandbox's Durable Object, so only serializable values cross: no
 * AbortSignal. Commands run through `execStream`; to cancel or time out a command this side
 * drops the stream and ends the sandbox's processes with `killAllProcesses`.
 */
import { type ExecEvent, parseSSEStream, streamFile } from "@cloudflare/sandbox";
import { CappedOutput } from "./cappedOutput";
import { toSandboxError } from "./errors";
import {
  cancelledError,
  type ExecRequest,
  type ExecResult,
  type FileStream,
  type SandboxFileInfo,
  SandboxOperationError,
  type SandboxPort,
} from "./port";

/** The part of the SDK's sandbox stub this adapter uses. */
export interface SdkSandboxStub {
  execStream(command: string, options: { cwd: string; env: Record<string, string>; timeout: number }): Promise<ReadableStream<Uint8Array>>;
  writeFile(path: string, content: string, options?: { encoding?: string }): Promise<unknown>;
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
  deleteFile(path: string): Promise<unknown>;
  killAllProcesses(): Promise<number>;
  listFiles(
    path: string,
    options: { recursive: boolean; includeHidden: boolean },
  ): Promise<{ files: { absolutePath: string; type: string; size: number }[] }>;
}

const textEncoder = new TextEncoder();

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

function toBase64(bytes: Uint8Array): string {
  // Chunked so that a large file does not build one enormous argument list.
  let binary = "";
  for (let offset = 0; offset < bytes.byteLength; offset += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  }
  return btoa(binary);
}

export class SdkSandbox implements SandboxPort {
  constructor(
    private readonly sandbox: SdkSandboxStub,
    private readonly maxOutputBytes: number,
  ) {}

  async exec(request: ExecRequest): Promise<ExecResult> {
    const command = await this.withStdin(request);
    const started = Date.now();
    const stdout = new CappedOutput(this.maxOutputBytes);
    const stderr = new CappedOutput(this.maxOutputBytes);
    // The container applies no timeout to a streamed command and keeps it running when its
    // stream is dropped: this side keeps the deadline, and ends the command itself.
    const deadline = AbortSignal.timeout(request.timeoutMs);
    const stop = request.signal ? AbortSignal.any([deadline, request.signal]) : deadline;
    let exitCode: number | null = null;
    try {
      const stream = await this.sandbox.execStream(command, { cwd: request.cwd, env: request.env, timeout: request.timeoutMs });
      for await (const event of parseSSEStream<ExecEvent>(stream, stop)) {
        if (event.type === "stdout") stdout.push(event.data ?? "");
        else if (event.type === "stderr") stderr.push(event.data ?? "");
        else if (event.type === "complete") exitCode = event.exitCode ?? event.result?.exitCode ?? null;
        else if (event.type === "error") {
          throw new SandboxOperationError("SANDBOX_ERROR", `Command failed in the sandbox: ${event.error ?? "unknown error"}`, true);
        }
      }
    } catch (error) {
      if (!stop.aborted) throw toSandboxError(error, "exec");
      await this.endCommands();
      if (request.signal?.aborted) throw cancelledError();
    }
    const timedOut = deadline.aborted && exitCode === null;
    if (!timedOut && exitCode === null) {
      throw new SandboxOperationError("SANDBOX_ERROR", "The sandbox ended the command's output without an exit code", true);
    }
    return {
      exitCode: timedOut ? null : exitCode,
      timedOut,
      durationMs: Date.now() - started,
      stdout: stdout.result(),
      stderr: stderr.result(),
    };
  }

  async writeFile(path: string, content: Uint8Array): Promise<void> {
    await this.sandbox.writeFile(path, toBase64(content), { encoding: "base64" }).catch((error: unknown) => {
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
    // Chunked over SSE, so files beyond the 32 MiB encoded-read limit still arrive whole.
    const chunks = streamFile(sse);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(typeof next.value === "string" ? textEncoder.encode(next.value) : next.value);
      },
      async cancel(reason) {
        await chunks.throw(reason);
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

  /** Ends every command running in the sandbox, with its process tree (a job runs alone in its sandbox). */
  private async endCommands(): Promise<void> {
    await this.sandbox.killAllProcesses().catch((error: unknown) => {
      throw toSandboxError(error, "killing the command");
    });
  }

  /** The SDK's exec has no stdin: a job's stdin goes to a private file the command reads. */
  private async withStdin(request: ExecRequest): Promise<string> {
    if (request.stdin === undefined) return request.command;
    const stdinPath = `/tmp/.stdin-${crypto.randomUUID()}`;
    await this.sandbox.writeFile(stdinPath, request.stdin).catch((error: unknown) => {
      throw toSandboxError(error, stdinPath);
    });
    return `sh -c ${shellQuote(request.command)} < ${stdinPath}; status=$?; rm -f ${stdinPath}; exit $status`;
  }
}
