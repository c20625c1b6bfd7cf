/**
 * `POST /api/execute` and `POST /api/execute/stream` (where each runs: commandRunner.ts). As in
 * the real container, a client that disconnects does not stop its command: a streamed command
 * stays a process record until it exits or `/api/process/kill-all` ends it with every process of
 * its group.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { runInTarget } from "./commandRunner.ts";
import type { AgentContext } from "./context.ts";
import { AgentError, ErrorCode } from "./errors.ts";
import { readJsonBody, sendJson, timestamp } from "./http.ts";
import { ExecuteRequest } from "./schemas.ts";
import type { ExecutionTarget } from "./sessions.ts";
import { openSse } from "./sse.ts";

/** What the real container reports for a sessionless command it killed at its timeout. */
const TIMEOUT_EXIT_CODE = 124;
/** Bounds what one buffered /api/execute answer holds per stream, so a noisy command cannot exhaust the agent. */
const MAX_BUFFERED_OUTPUT_BYTES = 64 * 1024 * 1024;

function resolveTarget(context: AgentContext, body: ExecuteRequest): ExecutionTarget {
  if (body.background) {
    throw new AgentError(ErrorCode.VALIDATION_FAILED, "background execution is not supported by the local sandbox agent");
  }
  return context.sessions.target(body.sessionId, body);
}

function commandFailure(command: string, target: ExecutionTarget, why: string): AgentError {
  const where = target.session === undefined ? "sessionless execution" : `session '${target.session.id}'`;
  return new AgentError(ErrorCode.COMMAND_EXECUTION_ERROR, `Failed to execute command '${command}' in ${where}: ${why}`, {
    command,
    stderr: why,
  });
}

/** Buffered execs cannot be cancelled, as in the real container (only the agent's stop or their session's delete ends them). */
const NEVER = new AbortController().signal;

export async function handleExecute(req: IncomingMessage, res: ServerResponse, context: AgentContext): Promise<void> {
  const body = await readJsonBody(req, ExecuteRequest);
  const target = resolveTarget(context, body);
  const output = { stdout: "", stderr: "" };
  const started = Date.now();
  const outcome = await runInTarget(context, body.command, target, {
    signal: NEVER,
    streamed: false,
    maxOutputBytes: MAX_BUFFERED_OUTPUT_BYTES,
    onOutput: (stream, data) => {
      if (output[stream].length < MAX_BUFFERED_OUTPUT_BYTES) output[stream] += data;
      return undefined;
    },
  });
  if (outcome.timedOut) {
    // In a session the real container fails the request; sessionless it answers exit code 124.
    if (target.session !== undefined) throw commandFailure(body.command, target, `Command timeout after ${target.timeoutMs}ms`);
    output.stderr += `${output.stderr === "" || output.stderr.endsWith("\n") ? "" : "\n"}Command timed out after ${target.timeoutMs}ms`;
  }
  const exitCode = outcome.timedOut ? TIMEOUT_EXIT_CODE : outcome.exitCode;
  sendJson(res, 200, {
    success: exitCode === 0,
    exitCode,
    stdout: withoutFinalNewline(output.stdout),
    stderr: withoutFinalNewline(output.stderr),
    command: body.command,
    duration: Date.now() - started,
    timestamp: timestamp(),
    sessionId: target.session?.id,
  });
}

/**
 * The real container answers /api/execute with the output's lines joined by newlines, so the
 * output's final newline is dropped ("hi\n" and "hi" both read "hi"); the stream keeps it.
 */
function withoutFinalNewline(text: string): string {
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}

export async function handleExecuteStream(req: IncomingMessage, res: ServerResponse, context: AgentContext): Promise<void> {
  const body = await readJsonBody(req, ExecuteRequest);
  // The real container drops timeoutMs on this route (its handler never passes it on), so a
  // streamed command runs until it exits or kill-all ends it; the caller owns the deadline.
  const target = { ...resolveTarget(context, body), timeoutMs: undefined };
  const record = context.processes.start(body.command);
  const sse = openSse(res);
  const run = async () => {
    try {
      await sse.send({ type: "start", command: body.command, timestamp: timestamp() });
      const outcome = await runInTarget(context, body.command, target, {
        signal: record.cancel.signal,
        streamed: true,
        maxOutputBytes: Number.MAX_SAFE_INTEGER,
        // Once the client is gone, sse.send drops the output and no longer holds the command back.
        onOutput: (stream, data) => sse.send({ type: stream, data, timestamp: timestamp() }),
      });
      context.processes.finish(record, outcome.exitCode);
      await sse.send({ type: "complete", exitCode: outcome.exitCode, timestamp: timestamp() });
    } catch (error) {
      context.processes.finish(record, undefined, "error");
      await sse.send({ type: "error", error: error instanceof Error ? error.message : String(error), timestamp: timestamp() });
    } finally {
      sse.end();
    }
  };
  record.finished = run();
  await record.finished;
}
