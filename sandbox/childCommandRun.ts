/**
 * One run of a job's command in its sandbox, driven from this side (the coordinator): start it,
 * read its output in slices until it has ended, and keep its clock. At the deadline or on a
 * cancel the command's session is killed; a sandbox that stops answering (a command may stop or
 * kill everything in its container) has its container destroyed, so the job ends whatever the
 * command did. The scripts themselves are in childCommand.ts.
 */
import { answerWithin, NO_ANSWER } from "./answerWithin";
import { CappedOutput } from "./cappedOutput";
import { type ChildCommand, endScript, PollReportError, parsePollReport, pollScript, startScript } from "./childCommand";
import { CancelledError, type ExecRequest, type ExecResult, SandboxOperationError } from "./port";
import { signalFromExitCode } from "./signals";

/** Output read per stream per round trip (it travels as base64 in the exec's answer). */
const SLICE_BYTES = 1024 * 1024;
/** The round trip that starts a command waits this long for it to end, so a quick one needs no other. */
const FIRST_WAIT_MS = 1_000;
/** Later round trips wait in the sandbox up to this long for new output. */
const POLL_WAIT_MS = 500;
/** While a killed command's session is being ended. */
const END_POLL_WAIT_MS = 200;
/** After its deadline or a cancel, a command has this long to be gone before its container is destroyed. */
const END_GRACE_MS = 10_000;

/** The SDK call a run needs: a plain exec (a subshell of the container's session shell). */
export interface ExecStub {
  exec(command: string, options: { timeout: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

export interface RunLimits {
  maxOutputBytes: number;
  /** How long a round trip may go unanswered before the sandbox counts as stopped. */
  answerTimeoutMs: number;
  /** Destroys the container without asking anything of it. */
  abandonContainer(): Promise<void>;
}

/** One output stream of a running command: what is kept of it, and how far it has been read. */
class ReadPosition {
  readonly output: CappedOutput;
  offset = 0;
  private latest: Uint8Array = new Uint8Array();
  private readonly decoder = new TextDecoder();

  constructor(maxBytes: number) {
    this.output = new CappedOutput(maxBytes);
  }

  /** Keeps a slice read at the offset; returns how much of the file's `size` is still unread. */
  take(bytes: Uint8Array, size: number): number {
    this.output.push(bytes);
    this.offset += bytes.byteLength;
    this.latest = bytes;
    // Past the kept head only the tail survives: the middle of a huge output is never fetched.
    const skipped = this.output.unneeded(size - this.offset);
    if (skipped > 0) {
      this.output.skip(skipped);
      this.offset += skipped;
    }
    return Math.max(0, size - this.offset);
  }

  /** The last slice as text for live logs (a character split across slices is joined). */
  decodeLatest(): string {
    return this.decoder.decode(this.latest, { stream: true });
  }
}

type Ending = { reason: "timeout" | "cancel"; at: number };

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
    let waitMs = Math.min(FIRST_WAIT_MS, this.request.timeoutMs);
    let script = startScript(this.runId, child, waitMs, SLICE_BYTES);
    try {
      for (;;) {
        const answerWithinMs = this.limits.answerTimeoutMs + waitMs;
        const answer = await answerWithin(this.sandbox.exec(script, { timeout: answerWithinMs }), answerWithinMs, "running the command");
        if (answer === NO_ANSWER || (this.ending !== undefined && Date.now() - this.ending.at > END_GRACE_MS)) {
          return await this.giveUp(answerWithinMs);
        }
        const pending = this.take(answer);
        if (pending.exitCode !== null && pending.bytes === 0) return this.ended(pending.exitCode);
        if (this.ending === undefined) await this.endIfDue();
        // Output still to read is fetched at once; otherwise wait in the sandbox, never past the deadline.
        waitMs = pending.bytes > 0 ? 0 : this.ending ? END_POLL_WAIT_MS : Math.max(0, Math.min(POLL_WAIT_MS, this.deadlineAt - Date.now()));
        const offsets = { stdout: this.streams.stdout.offset, stderr: this.streams.stderr.offset };
        script = pollScript(this.runId, offsets, waitMs, SLICE_BYTES);
      }
    } catch (error) {
      // A fault mid-run (the job is retried): the command must not keep running beside its retry.
      if (!(error instanceof CancelledError) && !this.abandoned) await this.endQuietly();
      throw error;
    }
  }

  /** Keeps what one round trip brought; returns the exit status (once ended) and the bytes still unread. */
  private take(answer: { exitCode: number; stdout: string; stderr: string }): { exitCode: number | null; bytes: number } {
    if (answer.exitCode !== 0) {
      throw new SandboxOperationError(
        "SANDBOX_ERROR",
        `The sandbox could not run the command: ${answer.stderr.trim().slice(0, 500)}`,
        true,
      );
    }
    let report: ReturnType<typeof parsePollReport>;
    try {
      report = parsePollReport(answer.stdout);
    } catch (error) {
      if (error instanceof PollReportError) throw new SandboxOperationError("SANDBOX_ERROR", error.message, true);
      throw error;
    }
    if (report.kind === "missing") {
      throw new SandboxOperationError(
        "SANDBOX_ERROR",
        "The command's run vanished from the sandbox (its container was replaced while it ran)",
        true,
      );
    }
    const bytes = this.streams.stdout.take(report.stdout, report.stdoutSize) + this.streams.stderr.take(report.stderr, report.stderrSize);
    if (this.request.onOutput) {
      for (const name of ["stdout", "stderr"] as const) {
        const text = this.streams[name].decodeLatest();
        if (text) this.request.onOutput(name, text);
      }
    }
    return { exitCode: report.exitCode, bytes };
  }

  /** At the deadline or on a cancel: kills the command's session (its end is then read as usual). */
  private async endIfDue(): Promise<void> {
    const reason = this.request.signal?.aborted ? "cancel" : Date.now() >= this.deadlineAt ? "timeout" : undefined;
    if (!reason) return;
    this.ending = { reason, at: Date.now() };
    const ended = await answerWithin(
      this.sandbox.exec(endScript(this.runId), { timeout: this.limits.answerTimeoutMs }),
      this.limits.answerTimeoutMs,
      "ending the command",
    );
    // No answer to the kill: the next round trip gives the sandbox up.
    if (ended === NO_ANSWER) this.ending.at = 0;
  }

  private async endQuietly(): Promise<void> {
    await answerWithin(
      this.sandbox.exec(endScript(this.runId), { timeout: this.limits.answerTimeoutMs }),
      this.limits.answerTimeoutMs,
      "ending the command",
    ).catch(() => undefined);
  }

  /** The sandbox stopped answering, or the command outlived its kill: its container goes. */
  private async giveUp(silentForMs: number): Promise<ExecResult> {
    this.abandoned = true;
    await this.limits.abandonContainer();
    if (this.ending?.reason === "cancel" || this.request.signal?.aborted) throw new CancelledError(this.soFar(false));
    if (this.ending?.reason === "timeout" || Date.now() >= this.deadlineAt) return this.soFar(true);
    throw new SandboxOperationError(
      "SANDBOX_ERROR",
      `The sandbox stopped responding for ${Math.round(silentForMs / 1000)} s while the command ran; its container was destroyed, and the sandbox's next job starts on a fresh one`,
      false,
    );
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
