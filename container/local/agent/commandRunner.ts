/**
 * Where a command runs: in its session's shell (a streamed one in a subshell of it), or, without
 * a session, as `bash -c` of its own, one at a time in the agent's queue. A session's shell runs
 * its commands in order by itself, and another session's go on beside them, as on Cloudflare's
 * server, so a command stuck in one session holds up no other. When the command ends the
 * session's shell, the caller gets SESSION_TERMINATED and the session is gone.
 */
import type { AgentContext } from "./context.ts";
import { AgentError, ErrorCode } from "./errors.ts";
import {
  assertValidEnvNames,
  type CommandOutcome,
  isDirectory,
  KILLED_STATUS,
  missingDirectory,
  type OutputHandler,
  runCommand,
} from "./exec.ts";
import type { ExecutionTarget } from "./sessions.ts";

export type RunOptions = {
  onOutput: OutputHandler;
  signal: AbortSignal;
  /** Streamed (a subshell, cancellable), or buffered (in the session's shell itself). */
  streamed: boolean;
  /** Bytes per stream handed to `onOutput` at most. */
  maxOutputBytes: number;
};

export async function runInTarget(
  context: AgentContext,
  command: string,
  target: ExecutionTarget,
  options: RunOptions,
): Promise<CommandOutcome> {
  const { session } = target;
  if (session === undefined) {
    return context.queue.run(() => {
      // Cancelled while waiting for its turn: it never starts.
      if (options.signal.aborted) return Promise.resolve({ exitCode: KILLED_STATUS, timedOut: false, cancelled: true });
      return runCommand(command, target, { onOutput: options.onOutput, signal: options.signal, reap: context.reaper });
    });
  }
  if (target.cwdRequested && !isDirectory(target.cwd)) return missingDirectory(target.cwd, options.onOutput);
  assertValidEnvNames(target.env);
  try {
    return await context.sessions.shellOf(session).run({
      command,
      cwd: target.cwdRequested ? target.cwd : undefined,
      env: target.env,
      timeoutMs: target.timeoutMs,
      inSubshell: options.streamed,
      onOutput: options.onOutput,
      signal: options.signal,
      maxOutputBytes: options.maxOutputBytes,
    });
  } catch (error) {
    if (error instanceof AgentError && error.code === ErrorCode.SESSION_TERMINATED) context.sessions.forgetTerminated(session);
    throw error;
  }
}
