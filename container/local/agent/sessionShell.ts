/**
 * A session's long-lived shell, as Cloudflare's container server keeps one per SDK session: each
 * command is pasted into the same `bash`, so `cd`, `export` and shell functions carry over to the
 * session's next command, `$$` is that shell, and a top-level `exit` (or `kill $$`) ends it; the
 * caller then gets 410 SESSION_TERMINATED. A streamed command runs in a subshell of it, as there.
 *
 * Each command's script is sourced from a file (bash reads a pipe one byte per system call), and
 * its command text is handed to `eval` from a quoted variable, so a syntax error in it fails that
 * command instead of swallowing what comes after it. Output goes to files of the
 * command's own, so what a background process writes later never mixes into the next command's
 * output; the exit status comes back on a pipe (fd 3) that the command itself never sees.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type FileHandle, open, unlink, writeFile } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentError, ErrorCode } from "./errors.ts";
import { type CommandOutcome, type OutputHandler, runningProcessGroups } from "./exec.ts";
import type { Reaper } from "./reaper.ts";

/** How often a streamed command's output files are read while it runs. */
const STREAM_READ_INTERVAL_MS = 10;
/** Read at most this much of one stream at a time, so one noisy stream cannot starve the other. */
const READ_CHUNK_BYTES = 256 * 1024;
/** After the shell exits, how long its status pipe may take to hand over what it still holds. */
const STATUS_PIPE_DRAIN_MS = 200;

export type ShellCommand = {
  command: string;
  /** Runs there and returns to the shell's directory afterwards; checked to exist beforehand. */
  cwd: string | undefined;
  /** Exported for this command only; the shell's own values come back afterwards. */
  env: Record<string, string>;
  timeoutMs: number | undefined;
  /** A streamed command runs in a subshell of its own process group, so it can be cancelled. */
  inSubshell: boolean;
  onOutput: OutputHandler;
  signal: AbortSignal;
};

export type ShellOptions = {
  sessionId: string;
  cwd: string;
  env: Record<string, string>;
  reaper: Reaper;
  /** Called once when the shell has exited, with its status (128 + N for signal N). */
  onExit: (exitCode: number) => void;
};

function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `export` for the command, and the lines that bring the shell's own values back after it. */
function scopedEnv(env: Record<string, string>): { set: string; restore: string } {
  const set: string[] = [];
  const restore: string[] = [];
  Object.entries(env).forEach(([name, value], index) => {
    set.push(`__as_had${index}=\${${name}+x}; __as_was${index}=\${${name}-}; builtin export ${name}=${quote(value)}`);
    restore.push(
      `if [ -n "$__as_had${index}" ]; then ${name}=$__as_was${index}; else builtin unset -v ${name}; fi; builtin unset -v __as_had${index} __as_was${index}`,
    );
  });
  return { set: set.join("\n"), restore: restore.join("\n") };
}

type Waiter = { resolve: (status: number) => void; onPid: (pid: number) => void };

export class SessionShell {
  private readonly shell: ChildProcess;
  private readonly outputDir: string;
  private readonly waiters = new Map<string, Waiter>();
  private statusBuffer = "";
  private exitCode: number | undefined;
  private readonly exited: Promise<number>;

  constructor(private readonly options: ShellOptions) {
    this.outputDir = mkdtempSync(join(tmpdir(), "agent-session-"));
    this.shell = spawn("bash", ["--norc", "--noprofile"], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
      stdio: ["pipe", "ignore", "ignore", "pipe"],
      // Its own process group: the agent's stop takes the shell and its foreground work down together.
      detached: true,
    });
    // A shell that died leaves writes to its stdin failing; its exit is reported below instead.
    this.shell.stdin?.on("error", () => undefined);
    const statusPipe = this.shell.stdio[3];
    const drained = new Promise<void>((resolve) => {
      if (!statusPipe) return resolve();
      statusPipe.on("data", (chunk: Buffer) => this.readStatus(chunk.toString("latin1")));
      statusPipe.on("end", resolve);
      statusPipe.on("error", () => resolve());
    });
    this.exited = new Promise<number>((resolve) => {
      let reported = false;
      const ended = (status: number) => {
        if (reported) return;
        reported = true;
        // Statuses the shell wrote just before it exited still count.
        void Promise.race([drained, sleep(STATUS_PIPE_DRAIN_MS)]).then(() => {
          this.exitCode = status;
          rmSync(this.outputDir, { recursive: true, force: true });
          options.onExit(status);
          resolve(status);
        });
      };
      this.shell.once("exit", (code, signal) => ended(code ?? (signal ? 128 + constants.signals[signal] : 1)));
      // bash could not be started at all: the status a shell gives a missing command.
      this.shell.once("error", () => ended(127));
    });
  }

  get pid(): number | undefined {
    return this.shell.pid;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Ends the shell and everything in its process group. */
  async destroy(): Promise<void> {
    if (this.shell.pid !== undefined) {
      try {
        process.kill(-this.shell.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await this.exited;
  }

  /** Lines `<token> <status>` when a command ends, `<token> pid <pid>` when a subshell starts. */
  private readStatus(text: string): void {
    this.statusBuffer += text;
    for (let end = this.statusBuffer.indexOf("\n"); end >= 0; end = this.statusBuffer.indexOf("\n")) {
      const [token, first, second] = this.statusBuffer.slice(0, end).split(" ");
      this.statusBuffer = this.statusBuffer.slice(end + 1);
      const waiter = token === undefined ? undefined : this.waiters.get(token);
      if (!waiter) continue;
      if (first === "pid") waiter.onPid(Number(second));
      else waiter.resolve(Number(first));
    }
  }

  /**
   * The two files a command is sourced from: `command` sets up and runs it, `after` puts the
   * shell's directory and variables back and reports the status. Apart, since a `return` in the
   * command ends the file it runs in.
   */
  private scripts(token: string, run: ShellCommand, stdoutPath: string, stderrPath: string): { command: string; after: string } {
    const env = scopedEnv(run.env);
    const redirects = `</dev/null >>${quote(stdoutPath)} 2>>${quote(stderrPath)}`;
    const report = `builtin printf '%s %s\\n' ${token} "$__as_status" >&3`;
    if (run.inSubshell) {
      const cd = run.cwd === undefined ? "" : `builtin cd -- ${quote(run.cwd)} || builtin exit 1`;
      return {
        command: [
          `__as_command=${quote(run.command)}; __as_flags=$-; builtin set -m`,
          `( builtin printf '%s pid %s\\n' ${token} "$BASHPID" >&3; builtin exec 3>&-`,
          cd,
          env.set,
          'builtin eval "$__as_command"',
          `) ${redirects}`,
        ].join("\n"),
        after: ["case $__as_flags in *m*) ;; *) builtin set +m ;; esac; builtin unset -v __as_command __as_flags", report].join("\n"),
      };
    }
    const [cd, back] =
      run.cwd === undefined
        ? ["", ""]
        : [`__as_dir=$PWD; builtin cd -- ${quote(run.cwd)}`, 'builtin cd -- "$__as_dir"; builtin unset -v __as_dir'];
    return {
      command: [`__as_command=${quote(run.command)}`, cd, env.set, '{ builtin eval "$__as_command"', `} ${redirects} 3>&-`].join("\n"),
      after: [env.restore, back, "builtin unset -v __as_command", report].join("\n"),
    };
  }

  /**
   * Runs one command to its end. At its timeout the caller is answered and the command keeps the
   * shell, as on Cloudflare's server; a cancel (streamed commands) kills the subshell's group.
   * Rejects with SESSION_TERMINATED when the shell exits first.
   */
  async run(run: ShellCommand): Promise<CommandOutcome> {
    if (!this.alive) throw this.terminated();
    const token = randomBytes(12).toString("hex");
    const stdoutPath = join(this.outputDir, `${token}.out`);
    const stderrPath = join(this.outputDir, `${token}.err`);
    const commandPath = join(this.outputDir, `${token}.sh`);
    const afterPath = join(this.outputDir, `${token}.after.sh`);
    const scripts = this.scripts(token, run, stdoutPath, stderrPath);
    const [files] = await Promise.all([
      Promise.all([open(stdoutPath, "w+"), open(stderrPath, "w+")]),
      writeFile(commandPath, scripts.command),
      writeFile(afterPath, scripts.after),
    ]);
    let subshellPid: number | undefined;
    let cancelRequested = false;
    const killSubshell = () => {
      cancelRequested = true;
      if (subshellPid !== undefined) void this.options.reaper.reapGroup(subshellPid);
    };
    const finished = new Promise<number>((resolve) => {
      this.waiters.set(token, {
        resolve,
        onPid: (pid) => {
          subshellPid = pid;
          runningProcessGroups.add(pid);
          if (cancelRequested) killSubshell();
        },
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      if (run.timeoutMs !== undefined && run.timeoutMs <= 2 ** 31 - 1) timer = setTimeout(() => resolve("timeout"), run.timeoutMs);
    });
    if (run.signal.aborted) killSubshell();
    else run.signal.addEventListener("abort", killSubshell, { once: true });
    const readers = files.map((file, index) => new OutputReader(file, index === 0 ? "stdout" : "stderr", run.onOutput));
    const streaming = run.inSubshell;
    let stopStreaming = false;
    const pump = streaming
      ? (async () => {
          while (!stopStreaming) {
            for (const reader of readers) await reader.readAvailable();
            await sleep(STREAM_READ_INTERVAL_MS);
          }
        })()
      : Promise.resolve();
    try {
      // Sourced from a file, not pasted: bash reads a pipe one byte per system call.
      this.shell.stdin?.write(`builtin source ${quote(commandPath)}; __as_status=$?; builtin source ${quote(afterPath)}\n`);
      const first = await Promise.race([finished, timedOut, this.exited.then(() => "exited" as const)]);
      stopStreaming = true;
      await pump;
      if (first === "exited") throw this.terminated();
      if (first === "timeout") return { exitCode: 0, timedOut: true, cancelled: false };
      for (const reader of readers) await reader.readToEnd();
      return { exitCode: first, timedOut: false, cancelled: cancelRequested };
    } finally {
      stopStreaming = true;
      clearTimeout(timer);
      run.signal.removeEventListener("abort", killSubshell);
      this.waiters.delete(token);
      if (subshellPid !== undefined) runningProcessGroups.delete(subshellPid);
      await Promise.all(files.map((file) => file.close()));
      await Promise.all([stdoutPath, stderrPath, commandPath, afterPath].map((path) => unlink(path).catch(() => undefined)));
    }
  }

  private terminated(): AgentError {
    const { sessionId } = this.options;
    return sessionTerminated(sessionId, this.exitCode);
  }
}

/** What Cloudflare's server answers for a session whose shell has exited. */
export function sessionTerminated(sessionId: string, exitCode: number | undefined): AgentError {
  return new AgentError(ErrorCode.SESSION_TERMINATED, `Session '${sessionId}' shell exited (exit code: ${exitCode ?? "unknown"})`, {
    sessionId,
    exitCode: exitCode ?? null,
  });
}

/** Hands a growing output file to the caller as text, from where it last read. */
class OutputReader {
  private position = 0;
  private readonly decoder = new StringDecoder("utf8");
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);

  constructor(
    private readonly file: FileHandle,
    private readonly stream: "stdout" | "stderr",
    private readonly onOutput: OutputHandler,
  ) {}

  /** Reads what is there now; false once a read finds nothing new. */
  async readAvailable(): Promise<boolean> {
    const { bytesRead } = await this.file.read(this.buffer, 0, READ_CHUNK_BYTES, this.position);
    if (bytesRead === 0) return false;
    this.position += bytesRead;
    const text = this.decoder.write(this.buffer.subarray(0, bytesRead));
    if (text.length > 0) await this.onOutput(this.stream, text);
    return true;
  }

  async readToEnd(): Promise<void> {
    while (await this.readAvailable()) {
      // Keep reading until the file has nothing more.
    }
    const rest = this.decoder.end();
    if (rest.length > 0) await this.onOutput(this.stream, rest);
  }
}
