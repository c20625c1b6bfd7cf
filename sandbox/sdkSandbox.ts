/**
 * The sandbox port over the Cloudflare Sandbox SDK: the only adapter, deployed and local alike.
 * Every call is RPC into the sandbox's Durable Object, so only serializable values cross: no
 * AbortSignal. Commands run through `execStream`; to cancel or time out a command this side
 * drops the stream and ends the sandbox's processes with `killAllProcesses`.
 */
import { type ExecEvent, parseSSEStream } from "@cloudflare/sandbox";
import { WORKSPACE_ROOT } from "../schemas/ids";
import { DEFAULT_ARTIFACT_MODE } from "../schemas/job";
import { toBase64 } from "./base64";
import { CappedOutput } from "./cappedOutput";
import { toSandboxError } from "./errors";
import { decodeFileStream } from "./fileStream";
import { inPieces } from "./pieces";
import {
  CancelledError,
  type ExecRequest,
  type ExecResult,
  type FileStream,
  type SandboxFileInfo,
  SandboxOperationError,
  type SandboxPort,
} from "./port";
import { signalFromExitCode } from "./signals";

/** The part of the SDK's sandbox stub this adapter uses. */
export interface SdkSandboxStub {
  prepareWorkspace(): Promise<unknown>;
  execStream(command: string, options: { cwd: string; env: Record<string, string>; timeout: number }): Promise<ReadableStream<Uint8Array>>;
  writeFile(path: string, content: string, options?: { encoding?: string }): Promise<unknown>;
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
  deleteFile(path: string): Promise<unknown>;
  killAllProcesses(): Promise<number>;
  exec(command: string, options: { timeout: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  destroy(): Promise<void>;
  listFiles(
    path: string,
    options: { recursive: boolean; includeHidden: boolean },
  ): Promise<{ files: { absolutePath: string; type: string; size: number; mode: string }[] }>;
}

/** The SDK container's `mode` is `ls`-style, the nine permission bits only (`rwxr-xr-x`). */
const LISTED_MODE = /^[r-][w-][x-][r-][w-][x-][r-][w-][x-]$/;

/** `rwxr-xr-x` as 0o755; a mode the container did not spell as expected counts as plain 0o644. */
function parseListedMode(mode: string): number {
  if (!LISTED_MODE.test(mode)) return DEFAULT_ARTIFACT_MODE;
  return [...mode].reduce((bits, ch) => (bits << 1) | (ch === "-" ? 0 : 1), 0);
}

/** Bytes per SDK write when a file comes in pieces (base64 makes each a third larger). */
const WRITE_PIECE_BYTES = 8 * 1024 * 1024;
/** Housekeeping commands (joining pieces, chmod, unpacking an upload) get this long. */
const HOUSEKEEPING_TIMEOUT_MS = 5 * 60 * 1000;

/** How long an ended command's stream may take to close before this side cuts it. */
const STREAM_DRAIN_MS = 5_000;

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

export class SdkSandbox implements SandboxPort {
  constructor(
    private readonly sandbox: SdkSandboxStub,
    private readonly maxOutputBytes: number,
  ) {}

  async exec(request: ExecRequest): Promise<ExecResult> {
    const { command, stdinPath } = await this.prepareCommand(request);
    const started = Date.now();
    const stdout = new CappedOutput(this.maxOutputBytes);
    const stderr = new CappedOutput(this.maxOutputBytes);
    // The container applies no timeout to a streamed command and keeps it running when its
    // stream is dropped: this side keeps the deadline, and ends the command itself.
    const deadline = AbortSignal.timeout(request.timeoutMs);
    const stop = request.signal ? AbortSignal.any([deadline, request.signal]) : deadline;
    // Once the command is ended its stream closes by itself; cutting it is the last resort.
    const cutStream = new AbortController();
    let ending: Promise<void> | undefined;
    let cutTimer: ReturnType<typeof setTimeout> | null = null;
    const onStop = () => {
      ending = this.endCommands();
      cutTimer = setTimeout(() => cutStream.abort(), STREAM_DRAIN_MS);
    };
    let exitCode: number | null = null;
    try {
      const stream = await this.sandbox.execStream(command, { cwd: WORKSPACE_ROOT, env: request.env, timeout: request.timeoutMs });
      if (stop.aborted) onStop();
      else stop.addEventListener("abort", onStop, { once: true });
      for await (const event of parseSSEStream<ExecEvent>(stream, cutStream.signal)) {
        if (event.type === "stdout" || event.type === "stderr") {
          const text = event.data ?? "";
          (event.type === "stdout" ? stdout : stderr).push(text);
          request.onOutput?.(event.type, text);
        } else if (event.type === "complete") exitCode = event.exitCode ?? event.result?.exitCode ?? null;
        else if (event.type === "error") {
          throw new SandboxOperationError("SANDBOX_ERROR", `Command failed in the sandbox: ${event.error ?? "unknown error"}`, true);
        }
      }
    } catch (error) {
      if (!stop.aborted) throw toSandboxError(error, "exec");
    } finally {
      stop.removeEventListener("abort", onStop);
      if (cutTimer !== null) clearTimeout(cutTimer);
    }
    if (stop.aborted) {
      await ending;
      // The command's own clean-up did not run: its stdin (which may hold secrets) goes now.
      if (stdinPath) await this.sandbox.deleteFile(stdinPath).catch(() => undefined);
      if (request.signal?.aborted) {
        throw new CancelledError({
          exitCode: null,
          signal: null,
          timedOut: false,
          durationMs: Date.now() - started,
          stdout: stdout.result(),
          stderr: stderr.result(),
        });
      }
    }
    const timedOut = deadline.aborted;
    if (!timedOut && exitCode === null) {
      throw new SandboxOperationError("SANDBOX_ERROR", "The sandbox ended the command's output without an exit code", true);
    }
    return {
      exitCode: timedOut ? null : exitCode,
      // A timed-out command was ended by this side: that is its timeout, not a signal to report.
      signal: timedOut ? null : signalFromExitCode(exitCode),
      timedOut,
      durationMs: Date.now() - started,
      stdout: stdout.result(),
      stderr: stderr.result(),
    };
  }

  async prepareWorkspace(): Promise<void> {
    await this.sandbox.prepareWorkspace().catch((error: unknown) => {
      throw toSandboxError(error, "restoring the saved workspace");
    });
  }

  async writeFile(path: string, content: Uint8Array): Promise<void> {
    await this.sandbox.writeFile(path, toBase64(content), { encoding: "base64" }).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
  }

  async readFile(path: string): Promise<FileStream> {
    // The listing gives the size to stream against and the mode (and tells a directory from a missing file).
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    const entry = (await this.listEntries(dir, false)).find((file) => file.absolutePath === path);
    if (!entry) throw new SandboxOperationError("FILE_NOT_FOUND", `File not found: ${path}`, false);
    if (entry.type === "directory") throw new SandboxOperationError("IS_DIRECTORY", `${path} is a directory, not a file`, false);
    const sse = await this.sandbox.readFileStream(path).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
    // Chunked over SSE, so files beyond the 32 MiB encoded-read limit still arrive whole.
    const body = decodeFileStream(sse);
    return { size: entry.size, mode: parseListedMode(entry.mode), body };
  }

  async deleteFile(path: string): Promise<void> {
    await this.sandbox.deleteFile(path).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
  }

  async listFiles(dir: string): Promise<SandboxFileInfo[]> {
    const entries = await this.listEntries(dir, true);
    return entries.filter((file) => file.type === "file").map((file) => ({ path: file.absolutePath, size: file.size }));
  }

  private async listEntries(dir: string, recursive: boolean) {
    const listing = await this.sandbox.listFiles(dir, { recursive, includeHidden: true }).catch((error: unknown) => {
      throw toSandboxError(error, dir);
    });
    return listing.files;
  }

  async endCommands(): Promise<void> {
    await this.sandbox.killAllProcesses().catch((error: unknown) => {
      throw toSandboxError(error, "killing the command");
    });
  }

  async writeFileFromStream(path: string, body: ReadableStream<Uint8Array>): Promise<void> {
    const prefix = `/tmp/.part-${crypto.randomUUID()}-`;
    let index = 0;
    for await (const piece of inPieces(body, WRITE_PIECE_BYTES)) {
      const part = `${prefix}${String(index++).padStart(6, "0")}`;
      await this.sandbox.writeFile(part, toBase64(piece), { encoding: "base64" }).catch((error: unknown) => {
        throw toSandboxError(error, path);
      });
    }
    const target = shellQuote(path);
    // No pieces: an empty file. Otherwise a failed join fails the write (never a short file).
    const join = index === 0 ? ": >" : `cat ${prefix}* >`;
    await this.run(`mkdir -p -- "$(dirname -- ${target})" && ${join} ${target}; status=$?; rm -f ${prefix}*; exit $status`);
  }

  async setMode(path: string, mode: string): Promise<void> {
    await this.run(`chmod ${/^[0-7]{3,4}$/.test(mode) ? mode : "644"} -- ${shellQuote(path)}`);
  }

  async run(command: string): Promise<{ stdout: string; stderr: string }> {
    const result = await this.sandbox.exec(command, { timeout: HOUSEKEEPING_TIMEOUT_MS }).catch((error: unknown) => {
      throw toSandboxError(error, "a housekeeping command");
    });
    if (result.exitCode !== 0) {
      throw new SandboxOperationError("SANDBOX_ERROR", `${result.stderr.trim().slice(0, 500) || `exit code ${result.exitCode}`}`, false);
    }
    return { stdout: result.stdout, stderr: result.stderr };
  }

  async destroy(): Promise<void> {
    await this.endCommands();
    // Emptied first: a container's disk goes with it, but the local host keeps workspaces on disk.
    // A process that outlived the kill may still be writing: go again until nothing is left.
    let remaining = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const wiped = await this.sandbox.exec(`find ${WORKSPACE_ROOT} -mindepth 1 -delete`, { timeout: 120_000 }).catch((error: unknown) => {
        throw toSandboxError(error, "emptying the workspace");
      });
      remaining = wiped.exitCode === 0 ? "" : wiped.stderr.slice(0, 500) || `exit code ${wiped.exitCode}`;
      if (!remaining) break;
      await this.endCommands();
    }
    if (remaining) throw new SandboxOperationError("SANDBOX_ERROR", `Could not empty the workspace: ${remaining}`, true);
    await this.sandbox.destroy().catch((error: unknown) => {
      throw toSandboxError(error, "destroying the container");
    });
  }

  /**
   * The command as the sandbox runs it: in its cwd, created if missing (a container's shell would
   * refuse a missing one), and reading its stdin from a private file (the SDK's exec has no stdin).
   */
  private async prepareCommand(request: ExecRequest): Promise<{ command: string; stdinPath?: string }> {
    let command = request.command;
    const stdinPath = request.stdin === undefined ? undefined : `/tmp/.stdin-${crypto.randomUUID()}`;
    if (request.stdin !== undefined && stdinPath !== undefined) {
      await this.sandbox.writeFile(stdinPath, request.stdin).catch((error: unknown) => {
        throw toSandboxError(error, stdinPath);
      });
      command = `{ ${command}\n} < ${stdinPath}; status=$?; rm -f ${stdinPath}; exit $status`;
    }
    if (request.cwd !== WORKSPACE_ROOT) {
      command = `mkdir -p -- ${shellQuote(request.cwd)} && cd -- ${shellQuote(request.cwd)} && { ${command}\n}`;
    }
    return { command, stdinPath };
  }
}
