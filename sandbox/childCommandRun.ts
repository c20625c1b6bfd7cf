/**
 * One run of a job's command in its sandbox, driven from this side (the coordinator): start it,
 * read its output in slices until it has ended, and keep its clock. At the deadline or on a
 * cancel the command's session is killed; a sandbox that stops answering (a command may stop or
 * kill everything in its container) has its container destroyed, so the job ends whatever the
 * command did. The scripts themselves are in childCommand.ts.
 */
import { Buffer } from "node:buffer";
import { answerWithin, NO_ANSWER } from "./answerWithin";
import { CappedOutput } from "./cappedOutput";
import {
  type ChildCommand,
  discardScript,
  endScript,
  type PollReport,
  PollReportError,
  type PollRequest,
  parsePollReport,
  pollScript,
  type StreamSlice,
  startScript,
} from "./childCommand";
import { toSandboxError } from "./errors";
import { decodeFileStream } from "./fileStream";
import { CancelledError, CommandLostError, type ExecRequest, type ExecResult, SandboxOperationError } from "./port";
import { signalFromExitCode } from "./signals";

/**
 * New output per stream up to this size comes in the poll's answer (base64 in an exec's answer
 * costs both container servers far more per byte than a streamed file); more is streamed from a
 * gzip file, at the price of one more round trip.
 */
const INLINE_BYTES = 32 * 1024;
/** The round trip that starts a command waits this long for it to end, so a quick one needs no other. */
const FIRST_WAIT_MS = 1_000;
/** Later round trips wait in the sandbox up to this long for new output. */
const POLL_WAIT_MS = 500;
/** While a killed command's session is being ended. */
const END_POLL_WAIT_MS = 200;
/** After its deadline or a cancel, a command has this long to be gone before its container is destroyed. */
const END_GRACE_MS = 10_000;
/**
 * Round trips that may fail in a row (an error, not silence) before the container counts as gone;
 * failures must also have gone on for the answer timeout: a passing fault must not end a long build.
 */
const FAILED_ROUND_TRIPS_ALLOWED = 3;
const FAILED_ROUND_TRIP_PAUSE_MS = 500;
const pauseAfterFailure = () => new Promise((resolve) => setTimeout(resolve, FAILED_ROUND_TRIP_PAUSE_MS));

/** The SDK calls a run needs: a plain exec (a subshell of the container's session shell) and a streamed file read. */
export interface ExecStub {
  exec(command: string, options: { timeout: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
}

export interface RunLimits {
  maxOutputBytes: number;
  /** How long a round trip may go unanswered before the sandbox counts as stopped. */
  answerTimeoutMs: number;
  /** Destroys the container without asking anything of it. */
  abandonContainer(): Promise<void>;
  /** Whether the container was replaced (started again) since the job was prepared to run (prepareWorkspace). */
  containerReplaced(): Promise<boolean>;
}

/** One output stream of a running command: what is kept of it, and how far it has been read. */
class ReadPosition {
  readonly output: CappedOutput;
  offset = 0;
  private latest: { bytes: Uint8Array; headBytes: number; skipped: number } = { bytes: new Uint8Array(), headBytes: 0, skipped: 0 };
  constructor(maxBytes: number) {
    this.output = new CappedOutput(maxBytes);
  }

  /** What the next poll asks of this stream. */
  want(): { at: number; headRoom: number } {
    return { at: this.offset, headRoom: this.output.headRoom() };
  }

  /**
   * Keeps a slice's two parts, `bytes` (their sizes checked by the caller); the middle between
   * them is counted as dropped, and the offset moves past it all.
   */
  take(slice: StreamSlice, bytes: Uint8Array): void {
    this.output.push(bytes.subarray(0, slice.headBytes));
    this.output.skip(slice.skippedBytes);
    this.output.push(bytes.subarray(slice.headBytes));
    this.offset += slice.headBytes + slice.skippedBytes + slice.tailBytes;
    this.latest = { bytes, headBytes: slice.headBytes, skipped: slice.skippedBytes };
  }

  /** The last slice's two parts for live logs: the head part, then the tail part with the count skipped before it. */
  latestParts(): Array<{ bytes: Uint8Array; skippedBefore: number }> {
    const { bytes, headBytes, skipped } = this.latest;
    if (skipped === 0) return [{ bytes, skippedBefore: 0 }];
    return [
      { bytes: bytes.subarray(0, headBytes), skippedBefore: 0 },
      { bytes: bytes.subarray(headBytes), skippedBefore: skipped },
    ];
  }
}

/** The likely cause a lost run's message names. */
const PROCESSES_KILLED = "a command that stops or kills every process in its sandbox, such as `kill -9 -1`, ends a job this way";
const OUTPUT_FILES_DELETED =
  "a command that deletes the files in /tmp/.artifact-sandbox-runs, where a run's output waits to be read, ends a job this way";

/** Output that could not be read; `missing` when its files were gone or cut short. */
type Unreadable = { unreadable: string; missing: boolean };

const REPLACED =
  "the command's run vanished from the sandbox (its container was replaced: its server was killed, or the container restarted)";

type Ending = { reason: "timeout" | "cancel"; at: number };

function stoppedResponding(silentForMs: number): string {
  return `the sandbox stopped responding for ${Math.round(silentForMs / 1000)} s`;
}

/** What one round trip to the sandbox brought: a report, silence, a failure (which may pass), or no such run any more. */
type RoundTrip =
  | { kind: "report"; report: Extract<PollReport, { kind: "report" }> }
  | { kind: "silent" }
  | { kind: "failed"; error: SandboxOperationError }
  | { kind: "vanished" };

/** Bytes per live-log piece handed on from one poll's output. */
const LIVE_PIECE_BYTES = 64 * 1024;
const NO_BYTES = new Uint8Array();

export class ChildCommandRun {
  private readonly started = Date.now();
  private readonly deadlineAt: number;
  private readonly streams: { stdout: ReadPosition; stderr: ReadPosition };
  private ending: Ending | undefined;
  /** Its container was destroyed: nothing more is asked of the sandbox. */
  private abandoned = false;

  constructor(
    private readonly sandbox: ExecStub,
    private readonly runId: string,
    private readonly request: ExecRequest,
    private readonly limits: RunLimits,
  ) {
    this.deadlineAt = this.started + request.timeoutMs;
    this.streams = { stdout: new ReadPosition(limits.maxOutputBytes), stderr: new ReadPosition(limits.maxOutputBytes) };
  }

  async run(): Promise<ExecResult> {
    const child: ChildCommand = { command: this.request.command, cwd: this.request.cwd, env: this.request.env };
    // The container is up (prepareWorkspace started it): every round trip has the same short deadline.
    let poll = this.pollRequest(Math.min(FIRST_WAIT_MS, this.request.timeoutMs));
    let script = startScript(this.runId, child, poll);
    /** The start's answer came: the command runs (or ran) in the container. */
    let started = false;
    let failedInARow = 0;
    let failingSince = 0;
    /** Why the start's round trip failed, while a poll asks whether it started the command all the same. */
    let startFailure: SandboxOperationError | undefined;
    try {
      for (;;) {
        const answerWithinMs = this.limits.answerTimeoutMs + poll.waitMs;
        const trip = await this.roundTrip(script, answerWithinMs);
        if (trip.kind === "failed") {
          // One failed round trip may be a passing fault: the same poll is asked again, for the
          // answer timeout (three round trips at least), so a passing fault does not end a long
          // build. A start whose answer failed may still have started the command, so a poll asks
          // whether it did (the container runs a session's commands in order, the start first).
          if (failedInARow++ === 0) failingSince = Date.now();
          if (this.mayTryAgain(failedInARow, failingSince)) {
            await pauseAfterFailure();
            if (!started) {
              startFailure ??= trip.error;
              script = pollScript(this.runId, poll);
            }
            continue;
          }
          const seconds = Math.round((Date.now() - failingSince) / 1000);
          const why = `its container's server failed ${failedInARow} round trips in a row over ${seconds} s (${trip.error.message})`;
          if (started) return await this.giveUp(why);
          // Never known to have started: its container goes (the command may run there), and the
          // job may be tried again, on a fresh one, never beside it.
          this.abandoned = true;
          await this.limits.abandonContainer();
          throw new SandboxOperationError("SANDBOX_ERROR", `Starting the command failed: ${why}; its container was destroyed`, true);
        }
        failedInARow = 0;
        if (trip.kind === "silent" || (this.ending !== undefined && Date.now() - this.ending.at > END_GRACE_MS)) {
          return await this.giveUp(stoppedResponding(answerWithinMs));
        }
        if (trip.kind === "vanished") return await this.vanished(started, startFailure);
        const { report } = trip;
        started = true;
        const taken = await this.take(report);
        if (taken === NO_ANSWER) return await this.giveUp(stoppedResponding(this.limits.answerTimeoutMs));
        if (taken !== "taken") {
          // A replaced container has none of the run's files either: that is the cause to name.
          if (await this.limits.containerReplaced().catch(() => false)) return await this.giveUp(REPLACED);
          return await this.giveUp(taken.unreadable, taken.missing ? OUTPUT_FILES_DELETED : undefined);
        }
        if (report.exitCode !== null) return this.ended(report.exitCode);
        if (this.ending === undefined) await this.endIfDue();
        // Wait in the sandbox for new output (it answers at once when some is there), never past the deadline.
        const waitMs = this.ending ? END_POLL_WAIT_MS : Math.max(0, Math.min(POLL_WAIT_MS, this.deadlineAt - Date.now()));
        poll = this.pollRequest(waitMs);
        script = pollScript(this.runId, poll);
      }
    } catch (error) {
      // A fault mid-run (the job is retried): the command must not keep running beside its retry,
      // nor its output stay in the container's /tmp.
      if (!(error instanceof CancelledError) && !this.abandoned) await this.discardQuietly();
      throw error;
    }
  }

  /**
   * The run is not in the sandbox. After a failed start, the container says whether it started
   * again meanwhile: if so the command most likely killed its server (`kill -9 -1` as its first
   * act), and the job fails once; if not, the start never reached it and the job may be tried
   * again. A started run ends here, its container destroyed whatever happened: when the command
   * deleted the run's files, it may still be running there.
   */
  private async vanished(started: boolean, startFailure: SandboxOperationError | undefined): Promise<ExecResult> {
    if (!started && !startFailure) throw new SandboxOperationError("SANDBOX_ERROR", `Before the command started, ${REPLACED}`, true);
    const replaced = await this.limits.containerReplaced().catch(() => undefined);
    if (!started) {
      const failed = `its start failed (${startFailure?.message})`;
      if (replaced === false) throw new SandboxOperationError("SANDBOX_ERROR", `The sandbox has no run of the command: ${failed}`, true);
      return await this.giveUp(`${failed}, and ${replaced ? "its container was replaced meanwhile" : "the sandbox has no run of it"}`);
    }
    if (replaced === false) return await this.giveUp("the files of the command's run were deleted from the sandbox", OUTPUT_FILES_DELETED);
    return await this.giveUp(
      replaced ? REPLACED : "the command's run vanished from the sandbox (its container was replaced, or the command deleted its files)",
    );
  }

  /** After `failures` in a row since `since`: three at least, and for the answer timeout. */
  private mayTryAgain(failures: number, since: number): boolean {
    return failures < FAILED_ROUND_TRIPS_ALLOWED || Date.now() - since < this.limits.answerTimeoutMs;
  }

  private pollRequest(waitMs: number): PollRequest {
    return {
      stdout: this.streams.stdout.want(),
      stderr: this.streams.stderr.want(),
      tailBytes: this.streams.stdout.output.tailSize,
      inlineBytes: INLINE_BYTES,
      waitMs,
    };
  }

  /** One exec of a start or poll script, and what came of it. */
  private async roundTrip(script: string, answerWithinMs: number): Promise<RoundTrip> {
    let answer: Awaited<ReturnType<ExecStub["exec"]>> | typeof NO_ANSWER;
    try {
      answer = await answerWithin(this.sandbox.exec(script, { timeout: answerWithinMs }), answerWithinMs, "running the command");
    } catch (error) {
      return { kind: "failed", error: toSandboxError(error, "the command's run") };
    }
    if (answer === NO_ANSWER) return { kind: "silent" };
    if (answer.exitCode !== 0) {
      const message = `The sandbox could not run the command: ${answer.stderr.trim().slice(0, 500) || `exit ${answer.exitCode}`}`;
      return { kind: "failed", error: new SandboxOperationError("SANDBOX_ERROR", message, true) };
    }
    let report: PollReport;
    try {
      report = parsePollReport(answer.stdout);
    } catch (error) {
      // A garbled answer is a failed round trip: asked again, and never a reason to run the command twice.
      if (error instanceof PollReportError)
        return { kind: "failed", error: new SandboxOperationError("SANDBOX_ERROR", error.message, true) };
      throw error;
    }
    return report.kind === "missing" ? { kind: "vanished" } : { kind: "report", report };
  }

  /**
   * Keeps what one poll brought, streaming its gzip files. A failed read is tried again (the files
   * stay until the next poll); one that keeps failing (a command may delete them) is `unreadable`.
   */
  private async take(report: Extract<PollReport, { kind: "report" }>): Promise<"taken" | typeof NO_ANSWER | Unreadable> {
    for (const name of ["stdout", "stderr"] as const) {
      const slice = report[name];
      let bytes: Uint8Array;
      if (slice.data.kind === "inline") bytes = slice.data.bytes;
      else {
        const read = await this.readSlice(slice, slice.data.paths);
        if (read === NO_ANSWER || !(read instanceof Uint8Array)) return read;
        bytes = read;
      }
      this.streams[name].take(slice, bytes);
    }
    const { onOutput } = this.request;
    if (onOutput) {
      for (const name of ["stdout", "stderr"] as const) {
        for (const { bytes, skippedBefore } of this.streams[name].latestParts()) {
          if (skippedBefore > 0) onOutput(name, NO_BYTES, skippedBefore);
          // In pieces: one poll may bring megabytes, and each piece becomes one live-log event.
          for (let at = 0; at < bytes.byteLength; at += LIVE_PIECE_BYTES) onOutput(name, bytes.subarray(at, at + LIVE_PIECE_BYTES));
        }
      }
    }
    return "taken";
  }

  /**
   * A slice's gzip files, read and checked against its sizes. A failed read is tried again: a
   * missing file or wrong bytes three times (a command may delete the files), another failure
   * for the answer timeout as well.
   */
  private async readSlice(slice: StreamSlice, paths: string[]): Promise<Uint8Array | typeof NO_ANSWER | Unreadable> {
    const since = Date.now();
    let failure = "";
    let missing = false;
    for (let tries = 1; ; tries++) {
      try {
        const read = await answerWithin(this.readGzipFiles(paths), this.limits.answerTimeoutMs, "reading the command's output");
        if (read === NO_ANSWER || read.byteLength === slice.headBytes + slice.tailBytes) return read;
        [failure, missing] = [`${read.byteLength} bytes where ${slice.headBytes + slice.tailBytes} were reported`, true];
      } catch (error) {
        const sandboxError = toSandboxError(error, "reading the command's output");
        // A missing file arrives as the SDK's FileNotFoundError, or inside a file stream's error event.
        [failure, missing] = [sandboxError.message, sandboxError.code === "FILE_NOT_FOUND" || /File not found/i.test(sandboxError.message)];
      }
      // A missing file stays missing: no need to wait out the answer timeout for it.
      if (!(missing ? tries < FAILED_ROUND_TRIPS_ALLOWED : this.mayTryAgain(tries, since))) {
        return { unreadable: `reading its output from the sandbox failed ${tries} times in a row (${failure})`, missing };
      }
      await pauseAfterFailure();
    }
  }

  /** The files' bytes, joined in order (they are read side by side). */
  private async readGzipFiles(paths: string[]): Promise<Uint8Array> {
    const parts = await Promise.all(paths.map((path) => this.readGzip(path)));
    return parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts);
  }

  private async readGzip(path: string): Promise<Uint8Array> {
    const file = decodeFileStream(await this.sandbox.readFileStream(path));
    return new Uint8Array(await new Response(file.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  }

  /** At the deadline or on a cancel: kills the command's session (its end is then read as usual). */
  private async endIfDue(): Promise<void> {
    const reason = this.request.signal?.aborted ? "cancel" : Date.now() >= this.deadlineAt ? "timeout" : undefined;
    if (!reason) return;
    this.ending = { reason, at: Date.now() };
    // A kill that failed is not tried again: the grace after it gives the container up instead.
    const ended = await answerWithin(
      this.sandbox.exec(endScript(this.runId), { timeout: this.limits.answerTimeoutMs }),
      this.limits.answerTimeoutMs,
      "ending the command",
    ).catch((error: unknown) => console.warn(`run ${this.runId}: ending its command failed`, error));
    // No answer to the kill: the next round trip gives the sandbox up.
    if (ended === NO_ANSWER) this.ending.at = 0;
  }

  private async discardQuietly(): Promise<void> {
    await answerWithin(
      this.sandbox.exec(discardScript(this.runId), { timeout: this.limits.answerTimeoutMs }),
      this.limits.answerTimeoutMs,
      "ending the command",
    ).catch(() => undefined);
  }

  /**
   * The sandbox stopped answering or its server kept failing (the command may have stopped or
   * killed every process there), or the command outlived its kill: its container goes, and what
   * the command wrote until then is kept.
   */
  private async giveUp(why: string, cause = PROCESSES_KILLED): Promise<ExecResult> {
    this.abandoned = true;
    await this.limits.abandonContainer();
    if (this.ending?.reason === "cancel" || this.request.signal?.aborted) throw new CancelledError(this.soFar(false));
    if (this.ending?.reason === "timeout" || Date.now() >= this.deadlineAt) return this.soFar(true);
    const next = "its container was destroyed, and the sandbox's next job starts on a fresh one";
    throw new CommandLostError(`While the command ran, ${why}; ${next} (${cause})`, this.soFar(false));
  }

  private ended(exitCode: number): ExecResult {
    if (this.ending?.reason === "cancel") throw new CancelledError(this.soFar(false));
    const timedOut = this.ending?.reason === "timeout";
    return {
      exitCode: timedOut ? null : exitCode,
      // A timed-out command was ended by this side: that is its timeout, not a signal to report.
      signal: timedOut ? null : signalFromExitCode(exitCode),
      timedOut,
      durationMs: Date.now() - this.started,
      stdout: this.streams.stdout.output.result(),
      stderr: this.streams.stderr.output.result(),
    };
  }

  /** What the command wrote until now, for a run ended from this side. */
  private soFar(timedOut: boolean): ExecResult {
    return {
      exitCode: null,
      signal: null,
      timedOut,
      durationMs: Date.now() - this.started,
      stdout: this.streams.stdout.output.result(),
      stderr: this.streams.stderr.output.result(),
    };
  }
}
