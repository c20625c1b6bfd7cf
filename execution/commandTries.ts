/**
 * Runs a run job's command, and again after each failed try (a non-zero exit or a kill by
 * signal) up to the job's `retries`, in the same sandbox within the same claim of the job, so
 * the lease's heartbeat covers every try. A timeout is not retried: a hung command tends to
 * hang again, and each retry would cost a whole `timeoutMs`. A cancel, or a try whose container
 * went away, ends the tries at once, keeping what the ended try wrote.
 */
import { CancelledError, CommandLostError, type ExecRequest, type ExecResult, type SandboxPort } from "../sandbox/port";
import type { CommandTry, RunJobRequest } from "../schemas/job";

export interface CommandTries {
  /** The last try, whose outputs the job keeps. */
  last: ExecResult;
  tries: CommandTry[];
  /** The last try was ended by a cancel (its output is what it wrote until then). */
  cancelled: boolean;
  /** The last try's container went away while it ran: why (its output is what it wrote until then). */
  lost?: CommandLostError;
}

export function succeeded(result: ExecResult): boolean {
  return !result.timedOut && result.exitCode === 0;
}

export async function runCommandTries(
  sandbox: SandboxPort,
  request: RunJobRequest,
  signal?: AbortSignal,
  onOutput?: ExecRequest["onOutput"],
  /** Called as each try starts, before its first output (live logs number every try's output in one sequence). */
  onTryStart?: () => void,
): Promise<CommandTries> {
  const tries: CommandTry[] = [];
  for (;;) {
    let last: ExecResult;
    onTryStart?.();
    try {
      last = await sandbox.exec({
        command: request.command,
        cwd: request.cwd,
        env: request.env,
        stdin: request.stdin,
        timeoutMs: request.timeoutMs,
        signal,
        onOutput,
      });
    } catch (error) {
      // Ended by a cancel, or its container gone: what it wrote until then is kept, as a CI log should be.
      const partial = error instanceof CancelledError || error instanceof CommandLostError ? error.partial : undefined;
      if (!partial) throw error;
      tries.push({ exitCode: null, signal: null, durationMs: partial.durationMs, timedOut: false });
      if (error instanceof CommandLostError) return { last: partial, tries, cancelled: false, lost: error };
      return { last: partial, tries, cancelled: true };
    }
    tries.push({ exitCode: last.exitCode, signal: last.signal, durationMs: last.durationMs, timedOut: last.timedOut });
    if (succeeded(last) || last.timedOut || tries.length > request.retries) return { last, tries, cancelled: false };
    // A cancel (or another runner taking the job over) that came as the try ended starts no other.
    if (signal?.aborted) return { last, tries, cancelled: true };
  }
}
