/**
 * The sandbox port over the Cloudflare Sandbox SDK: the only adapter, deployed and local alike.
 * Every call is RPC into the sandbox's Durable Object, so only serializable values cross: no
 * AbortSignal. Only the SDK's plain `exec` and file calls are used: a job's command runs as a
 * child process of its own with its output in files (childCommand.ts), so the container's
 * session shell, which `exit` or `kill $$` would end, never runs a job's text itself.
 */
import { WORKSPACE_ROOT } from "../schemas/ids";
import { DEFAULT_ARTIFACT_MODE } from "../schemas/job";
import { answerWithin, NO_ANSWER } from "./answerWithin";
import { toBase64 } from "./base64";
import { endAllScript, READ_LINK_PREFIX, stdinPath } from "./childCommand";
import { ChildCommandRun } from "./childCommandRun";
import { isContainerCapacityError, toSandboxError } from "./errors";
import { decodeFileStream } from "./fileStream";
import { inPieces } from "./pieces";
import { type ExecRequest, type ExecResult, type FileStream, type SandboxFileInfo, SandboxOperationError, type SandboxPort } from "./port";
import { inSubshell, shellQuote } from "./shell";
import { WorkspaceLost } from "./workspaceSnapshot";

/** The part of the SDK's sandbox stub this adapter uses. */
export interface SdkSandboxStub {
  prepareWorkspace(): Promise<unknown>;
  stopContainer(): Promise<void>;
  hasRunningContainer(): Promise<boolean>;
  containerStartedSincePrepared(): Promise<boolean>;
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

/**
 * Starting the container (a cold start; Cloudflare allows 30 s for an instance and 90 s for its
 * port) may take this long. Past the account's container cap the start fails at once
 * (sandboxObject.ts starts it in one go, not through the SDK's two-minute retries).
 */
const START_ANSWER_MS = 150_000;
const DEFAULT_ANSWER_TIMEOUT_MS = 20_000;

export class SdkSandbox implements SandboxPort {
  constructor(
    private readonly sandbox: SdkSandboxStub,
    private readonly maxOutputBytes: number,
    /** How long a round trip of a running command may go unanswered (config SANDBOX_ANSWER_TIMEOUT_SECONDS). */
    private readonly answerTimeoutMs = DEFAULT_ANSWER_TIMEOUT_MS,
  ) {}

  /** Runs the command as a child process of its own; this side keeps its clock (childCommandRun.ts). */
  async exec(request: ExecRequest): Promise<ExecResult> {
    const runId = crypto.randomUUID();
    if (request.stdin !== undefined) {
      await this.writeFileFromStream(stdinPath(runId), new Blob([request.stdin]).stream());
    }
    return new ChildCommandRun(this.sandbox, runId, request, {
      maxOutputBytes: this.maxOutputBytes,
      answerTimeoutMs: this.answerTimeoutMs,
      abandonContainer: () => this.abandonContainer(),
      containerReplaced: () => this.sandbox.containerStartedSincePrepared(),
    }).run();
  }

  /** Destroys the container without asking anything of it (its disk goes with it deployed). */
  private async abandonContainer(): Promise<void> {
    const destroyed = await answerWithin(this.sandbox.destroy(), this.answerTimeoutMs, "destroying the container").catch(
      (error: unknown) => error,
    );
    if (destroyed !== undefined) console.error("could not destroy an unresponsive container", destroyed);
  }

  async prepareWorkspace(): Promise<void> {
    const prepared = await answerWithin(this.sandbox.prepareWorkspace(), START_ANSWER_MS, "restoring the saved workspace").catch(
      (error: unknown) => {
        if (!isContainerCapacityError(error)) throw error;
        throw new SandboxOperationError(
          "CONTAINER_CAPACITY",
          "every container this deployment may run (the Sandbox class's max_instances) is running; the job waits queued until one frees up",
          true,
          { cause: error },
        );
      },
    );
    if (prepared === NO_ANSWER) {
      await this.abandonContainer();
      throw new SandboxOperationError("SANDBOX_UNAVAILABLE", "The sandbox's container did not start within 150 s; it was destroyed", true);
    }
    const lost = WorkspaceLost.safeParse(prepared);
    if (lost.success) {
      const now = lost.data.lost === "restored an older save" ? "holds the last save made before then" : "is empty (nothing was saved)";
      throw new SandboxOperationError(
        "WORKSPACE_LOST",
        `The workspace could not be saved before its container stopped (a save failed at ${lost.data.failedSaveAt}); /workspace ${now}, ` +
          "so later changes are gone. Submit again to go on from it as it is, or delete the sandbox to start over.",
        false,
      );
    }
  }

  async stopContainer(): Promise<void> {
    const stopped = await answerWithin(this.sandbox.stopContainer(), START_ANSWER_MS, "stopping the container");
    if (stopped === NO_ANSWER) throw new SandboxOperationError("SANDBOX_ERROR", "The container did not stop within 150 s", true);
  }

  async writeFile(path: string, content: Uint8Array): Promise<void> {
    // One SDK write carries at most 32 MiB encoded: a larger file goes in pieces.
    if (content.byteLength > WRITE_PIECE_BYTES) return this.writeFileFromStream(path, new Blob([content]).stream());
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
    // As artifact collection does: a link's size is not its target's, and a FIFO would never end.
    if (entry.type !== "file") {
      const what = entry.type === "symlink" ? "a symbolic link" : "not a regular file (a FIFO, socket or device)";
      throw new SandboxOperationError("PATH_REFUSED", `${path} is ${what}; a read job reads regular files only`, false);
    }
    // Cloudflare's server streams a file it takes for text (by its name, or by `file`: a pack that
    // starts with a shell script) as UTF-8, and invalid bytes then come back as U+FFFD. Through a
    // link named .gz it streams any file as bytes (base64), whatever it holds.
    const link = path.endsWith(".gz") ? undefined : `${READ_LINK_PREFIX}${crypto.randomUUID()}.gz`;
    if (link) await this.run(`ln -s -- ${shellQuote(path)} ${link}`);
    const removeLink = async () => {
      if (link) await this.run(`rm -f ${link}`).catch((error: unknown) => console.warn(`could not remove ${link}`, error));
    };
    const sse = await this.sandbox.readFileStream(link ?? path).catch(async (error: unknown) => {
      await removeLink();
      throw toSandboxError(error, path);
    });
    // Chunked over SSE, so files beyond the 32 MiB encoded-read limit still arrive whole.
    const body = decodeFileStream(sse).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush: removeLink,
      }),
    );
    return { size: entry.size, mode: parseListedMode(entry.mode), body };
  }

  async deleteFile(path: string): Promise<void> {
    await this.sandbox.deleteFile(path).catch((error: unknown) => {
      throw toSandboxError(error, path);
    });
  }

  async listFiles(dir: string): Promise<SandboxFileInfo[]> {
    const entries = await this.listEntries(dir, true);
    return entries
      .filter((entry) => entry.type !== "directory")
      .map((entry) => ({ path: entry.absolutePath, size: entry.size, ...(entry.type === "file" ? {} : { notRegular: entry.type }) }));
  }

  private async listEntries(dir: string, recursive: boolean) {
    const listing = await this.sandbox.listFiles(dir, { recursive, includeHidden: true }).catch((error: unknown) => {
      throw toSandboxError(error, dir);
    });
    return listing.files;
  }

  async endStaleCommands(): Promise<void> {
    const running = await answerWithin(this.sandbox.hasRunningContainer(), this.answerTimeoutMs, "asking whether the container runs").catch(
      (error: unknown) => {
        console.warn("could not tell whether the container runs; ending its commands as if it did", error);
        return true;
      },
    );
    // No container, no command left in one; an unanswered or failed question counts as one to end.
    if (running === false) return;
    await this.endCommands();
  }

  async endCommands(): Promise<void> {
    await this.run(endAllScript());
    // Processes started through the SDK's own process API, should anything have started one.
    await this.sandbox.killAllProcesses().catch((error: unknown) => {
      throw toSandboxError(error, "killing the command");
    });
  }

  async writeFileFromStream(path: string, body: ReadableStream<Uint8Array>): Promise<void> {
    const pieces = inPieces(body, WRITE_PIECE_BYTES);
    const first = await pieces.next();
    const second = first.done ? first : await pieces.next();
    if (second.done) {
      // One piece (or none): written where it belongs, the container making its directories.
      await this.writeFile(path, first.done ? new Uint8Array() : first.value);
      return;
    }
    const prefix = `/tmp/.part-${crypto.randomUUID()}-`;
    let index = 0;
    const writePiece = async (piece: Uint8Array) => {
      const part = `${prefix}${String(index++).padStart(6, "0")}`;
      await this.sandbox.writeFile(part, toBase64(piece), { encoding: "base64" }).catch((error: unknown) => {
        throw toSandboxError(error, path);
      });
    };
    await writePiece(first.value);
    await writePiece(second.value);
    for await (const piece of pieces) await writePiece(piece);
    const target = shellQuote(path);
    // A failed join fails the write (never a short file); the pieces go either way.
    await this.run(`mkdir -p -- "$(dirname -- ${target})" && cat ${prefix}* > ${target}; status=$?; rm -f ${prefix}*; exit $status`);
  }

  async setMode(path: string, mode: string): Promise<void> {
    await this.run(`chmod ${/^[0-7]{3,4}$/.test(mode) ? mode : "644"} -- ${shellQuote(path)}`);
  }

  async run(command: string): Promise<{ stdout: string; stderr: string }> {
    const result = await this.sandbox.exec(inSubshell(command), { timeout: HOUSEKEEPING_TIMEOUT_MS }).catch((error: unknown) => {
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
      const wiped = await this.sandbox
        .exec(inSubshell(`find ${WORKSPACE_ROOT} -mindepth 1 -delete`), { timeout: 120_000 })
        .catch((error: unknown) => {
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
}
