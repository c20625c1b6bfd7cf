/**
 * Runs one sessionless shell command: bash (or sh) -c, stdin closed, in a session of its own, with output
 * handed to the caller as it arrives. A command ended from outside (timeout, cancel) has its
 * whole session killed before `runCommand` resolves; one that exits leaves what it started in the
 * background running, as Cloudflare's container server does (the runner ends a job's processes
 * itself, sandbox/childCommand.ts).
 */
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { constants } from "node:os";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentError, ErrorCode } from "./errors.ts";
import type { Reaper } from "./reaper.ts";

export type OutputStream = "stdout" | "stderr";
/** May return a promise to apply backpressure: the command's output is not read further until it settles. */
export type OutputHandler = (stream: OutputStream, data: string) => Promise<void> | undefined;

export type CommandOutcome = {
  exitCode: number;
  timedOut: boolean;
  /** The caller's signal fired (client went away) before the command finished. */
  cancelled: boolean;
};

/**
 * A process the command left running in the background can keep its output pipe open forever;
 * after this long the agent stops waiting for the pipes to close.
 */
const PIPE_DRAIN_MS = 2_000;
/** Process groups of commands running now, so a stopping agent can take them down with it. */
export const runningProcessGroups = new Set<number>();

/** Bash's status for a command ended by SIGKILL (128 + 9), as a cancelled command reports it. */
export const KILLED_STATUS = 137;

/** Where and how a sessionless command runs. */
export type CommandTarget = { cwd: string; env: Record<string, string>; timeoutMs: number | undefined };

const SHELL = existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
/** Node fires a timer longer than this at once; such a deadline is as good as none. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Refuses a name that is not a shell variable's (a session's shell gets the names in its script). */
export function assertValidEnvNames(env: Record<string, string>): void {
  for (const key of Object.keys(env)) {
    if (!ENV_NAME.test(key)) throw new AgentError(ErrorCode.COMMAND_EXECUTION_ERROR, `Invalid environment variable name: ${key}`);
  }
}

function commandEnv(target: CommandTarget): Record<string, string> {
  assertValidEnvNames(target.env);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  return Object.assign(env, target.env);
}

/** What the session shell's `cd <cwd> || …` prints and returns for a directory that is not there. */
export async function missingDirectory(cwd: string, onOutput: OutputHandler): Promise<CommandOutcome> {
  await onOutput("stderr", `Failed to change directory to ${cwd}\n`);
  return { exitCode: 1, timedOut: false, cancelled: false };
}

/** Bash reports a command killed by signal N as exit status 128 + N. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return signal ? 128 + constants.signals[signal] : 1;
}

export async function runCommand(
  command: string,
  target: CommandTarget,
  options: { onOutput: OutputHandler; signal: AbortSignal; reap: Reaper },
): Promise<CommandOutcome> {
  const env = commandEnv(target);
  if (!isDirectory(target.cwd)) return missingDirectory(target.cwd, options.onOutput);
  const child = spawn(SHELL, ["-c", command], { cwd: target.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const processGroupId = child.pid;
  if (processGroupId !== undefined) runningProcessGroups.add(processGroupId);
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const exitedFirst = exited.then(() => "exit" as const);
  const spawnFailed = new Promise<Error>((resolve) => child.once("error", resolve));

  for (const name of ["stdout", "stderr"] as const) {
    const stream = child[name];
    const decoder = new StringDecoder("utf8");
    const forward = (text: string) => {
      if (text.length === 0) return;
      const pending = options.onOutput(name, text);
      if (pending) {
        stream.pause();
        void pending.finally(() => stream.resume());
      }
    };
    stream.on("data", (chunk: Buffer) => forward(decoder.write(chunk)));
    stream.on("end", () => forward(decoder.end()));
  }

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    // Node fires a timer longer than its 32-bit limit at once; such a deadline is as good as none.
    if (target.timeoutMs !== undefined && target.timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => resolve("timeout"), target.timeoutMs);
  });
  let onCancel: (() => void) | undefined;
  const cancelled = new Promise<"cancel">((resolve) => {
    onCancel = () => resolve("cancel");
    if (options.signal.aborted) resolve("cancel");
    else options.signal.addEventListener("abort", onCancel, { once: true });
  });

  const first = await Promise.race([exitedFirst, timedOut, cancelled, spawnFailed]);
  clearTimeout(timer);
  if (first instanceof Error) {
    if (onCancel) options.signal.removeEventListener("abort", onCancel);
    throw new AgentError(ErrorCode.COMMAND_EXECUTION_ERROR, first.message, { command, stderr: first.message });
  }
  // Ended from outside (timeout, cancel): its whole session goes. A command that exited leaves what
  // it started in the background running, as Cloudflare's container server does.
  if (first !== "exit") await options.reap.reap(processGroupId);
  if (processGroupId !== undefined) runningProcessGroups.delete(processGroupId);
  const exit = await exited;
  // The pipes close once the remaining output is read, unless a background process holds them.
  const giveUp = Promise.race([cancelled, sleep(PIPE_DRAIN_MS)]);
  await Promise.race([closed, giveUp]);
  child.stdout.destroy();
  child.stderr.destroy();
  // A signal shared by every command (foreground execs cannot be cancelled) must not collect listeners.
  if (onCancel) options.signal.removeEventListener("abort", onCancel);
  return {
    exitCode: exitStatus(exit.code, exit.signal),
    timedOut: first === "timeout",
    cancelled: first === "cancel",
  };
}

/** Sessionless commands run one at a time, in arrival order (a session's shell orders its own). */
export class CommandQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
