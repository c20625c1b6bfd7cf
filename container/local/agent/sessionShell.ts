/**
 * A session's long-lived shell, as Cloudflare's container server keeps one per SDK session: each
 * command runs in the same `bash`, so `cd`, `export` and shell functions carry over to the
 * session's next command, `$$` is that shell, and a top-level `exit` (or `kill $$`) ends it; the
 * caller then gets 410 SESSION_TERMINATED. A streamed command runs in a subshell of it, as there.
 * The shell runs its commands one after another, which is what orders a session's commands.
 *
 * Each command comes as one short line on the shell's stdin (bash reads a pipe one byte per
 * system call): it sources a setup file (the command text in a variable, the request's cwd and
 * env), runs `eval` on the text at the top level, as the real server's pasted text runs, then
 * sources a file that puts the shell's directory and variables back and reports the status on a
 * pipe (fd 3) that the command never sees. Output goes to files of the command's own, so what a
 * background process writes later never mixes into the next command's output.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { type FileHandle, open, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { shellQuote } from "../../../sandbox/shell.ts";
import { AgentError, ErrorCode } from "./errors.ts";
import {
  type CommandOutcome,
  exitStatus,
  KILLED_STATUS,
  MAX_TIMER_MS,
  type OutputHandler,
  type OutputStream,
  runningProcessGroups,
} from "./exec.ts";
import type { Reaper } from "./reaper.ts";

/** How often a streamed command's output files are read while it runs. */
const STREAM_READ_INTERVAL_MS = 10;
/** Read at most this much of one stream at a time, so one noisy stream cannot starve the other. */
const READ_CHUNK_BYTES = 64 * 1024;
/** After the shell exits, how long its status pipe may take to hand over what it still holds. */
const STATUS_PIPE_DRAIN_MS = 200;
/** The shell's own variables and function (the request's env must not overwrite them). */
const RESERVED_PREFIX = "__as_";

export type ShellCommand = {
  command: string;
  /** Runs there, and the shell returns to its own directory afterwards; the caller checked it exists. */
  cwd: string | undefined;
  /** Exported for this command only: the shell's own values come back afterwards. */
  env: Record<string, string>;
  timeoutMs: number | undefined;
  /** A streamed command runs in a subshell of its own process group, so it can be cancelled. */
  inSubshell: boolean;
  onOutput: OutputHandler;
  signal: AbortSignal;
  /** Bytes per stream handed on at most; the rest stays unread in the command's file. */
  maxOutputBytes: number;
};

export type ShellOptions = {
  sessionId: string;
  cwd: string;
  env: Record<string, string>;
  reaper: Reaper;
  /** Called once when the shell has exited, with its status (128 + N for signal N). */
  onExit: (exitCode: number) => void;
};

/** A command the shell has been given and has not finished. */
type Pending = {
  settle: (status: number | "exited") => void;
  onPid: (pid: number) => void;
  /** Its files, removed once its status has come: a timed-out command still writes to them. */
  paths: string[];
};

/** What one command's two script files hold, and the line that runs it. */
type CommandScripts = { setup: string; after: string; line: string };

function refuseReservedNames(env: Record<string, string>): void {
  for (const name of Object.keys(env)) {
    if (name.startsWith(RESERVED_PREFIX)) {
      throw new AgentError(
        ErrorCode.VALIDATION_FAILED,
        `Environment variable names starting ${RESERVED_PREFIX} are reserved by the local agent: ${name}`,
      );
    }
  }
}

export class SessionShell {
  private readonly shell: ChildProcess;
  private readonly outputDir: string;
  private readonly pending = new Map<string, Pending>();
  /** Process groups of streamed commands running now, ended with the shell. */
  private readonly subshells = new Set<number>();
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
          for (const each of this.pending.values()) each.settle("exited");
          this.pending.clear();
          rmSync(this.outputDir, { recursive: true, force: true });
          options.onExit(status);
          resolve(status);
        });
      };
      this.shell.once("exit", (code, signal) => ended(exitStatus(code, signal)));
      // bash could not be started at all: the status a shell gives a missing command.
      this.shell.once("error", () => ended(127));
    });
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** The shell's working directory now (a `cd` moves it), or undefined once it is gone. */
  currentDirectory(): string | undefined {
    if (!this.alive || this.shell.pid === undefined) return undefined;
    try {
      return readlinkSync(`/proc/${this.shell.pid}/cwd`);
    } catch {
      return undefined;
    }
  }

  /** Ends the shell, its streamed commands and everything in their process groups. */
  async destroy(): Promise<void> {
    for (const group of [this.shell.pid, ...this.subshells]) {
      if (group === undefined) continue;
      try {
        process.kill(-group, "SIGKILL");
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
      const [token = "", first, second] = this.statusBuffer.slice(0, end).split(" ");
      this.statusBuffer = this.statusBuffer.slice(end + 1);
      const pending = this.pending.get(token);
      if (!pending) continue;
      if (first === "pid") {
        pending.onPid(Number(second));
        continue;
      }
      this.pending.delete(token);
      pending.settle(Number(first));
      void Promise.all(pending.paths.map((path) => unlink(path).catch(() => undefined)));
    }
  }

  private scripts(
    token: string,
    run: ShellCommand,
    paths: { out: string; err: string; setup: string; after: string; cancel: string },
  ): CommandScripts {
    const exports = Object.entries(run.env).map(([name, value]) => ({ name, value: shellQuote(value) }));
    const variables = `__as_command=${shellQuote(run.command)}; __as_out=${shellQuote(paths.out)}; __as_err=${shellQuote(paths.err)}`;
    const report = `builtin printf '%s %s\\n' ${token} "$__as_status" >&3; builtin unset -v __as_command __as_out __as_err __as_status`;
    const source = (path: string) => `builtin source ${shellQuote(path)}`;
    if (run.inSubshell) {
      // The subshell enters the request's cwd and env itself; a cancel that came first ends it before the command runs.
      const enter = [
        run.cwd === undefined ? "" : `builtin cd -- ${shellQuote(run.cwd)} || return 1`,
        ...exports.map(({ name, value }) => `builtin export ${name}=${value}`),
        ":",
      ];
      return {
        setup: [variables, `__as_cancel=${shellQuote(paths.cancel)}; __as_flags=$-; builtin set -m`, `__as_enter() {`, ...enter, "}"].join(
          "\n",
        ),
        after: [
          "case $__as_flags in *m*) ;; *) builtin set +m ;; esac",
          "builtin unset -v __as_flags __as_cancel; builtin unset -f __as_enter",
          report,
        ].join("\n"),
        line:
          `${source(paths.setup)}; ( builtin printf '%s pid %s\\n' ${token} "$BASHPID" >&3; builtin exec 3>&-; ` +
          `[ -e "$__as_cancel" ] && builtin exit ${KILLED_STATUS}; __as_enter || builtin exit 1; builtin eval "$__as_command"\n` +
          `) </dev/null >>"$__as_out" 2>>"$__as_err"; __as_status=$?; ${source(paths.after)}\n`,
      };
    }
    const setup = [variables];
    const after: string[] = [];
    exports.forEach(({ name, value }, index) => {
      setup.push(`__as_had${index}=\${${name}+x}; __as_was${index}=\${${name}-}; builtin export ${name}=${value}`);
      after.push(
        `if [ -n "$__as_had${index}" ]; then ${name}=$__as_was${index}; else builtin unset -v ${name}; fi; builtin unset -v __as_had${index} __as_was${index}`,
      );
    });
    if (run.cwd !== undefined) {
      setup.push(`__as_dir=$PWD; builtin cd -- ${shellQuote(run.cwd)}`);
      after.push('builtin cd -- "$__as_dir"; builtin unset -v __as_dir');
    }
    return {
      setup: setup.join("\n"),
      after: [...after, report].join("\n"),
      // At the top level, as the real server's pasted text: `return` there is an error, not an end.
      line: `${source(paths.setup)}; { builtin eval "$__as_command"\n} </dev/null >>"$__as_out" 2>>"$__as_err" 3>&-; __as_status=$?; ${source(paths.after)}\n`,
    };
  }

  /**
   * Runs one command to its end. At its timeout the caller is answered and the command keeps the
   * shell, as on Cloudflare's server; a cancel (streamed commands) kills the subshell's group, or,
   * before it has begun, answers at once and the subshell ends as it begins.
   * Rejects with SESSION_TERMINATED when the shell exits first.
   */
  async run(run: ShellCommand): Promise<CommandOutcome> {
    if (!this.alive) throw this.terminated();
    refuseReservedNames(run.env);
    const token = randomBytes(12).toString("hex");
    const at = (suffix: string) => join(this.outputDir, `${token}.${suffix}`);
    const paths = { out: at("out"), err: at("err"), setup: at("sh"), after: at("after.sh"), cancel: at("cancel") };
    const scripts = this.scripts(token, run, paths);
    let subshellPid: number | undefined;
    let cancelled = false;
    let settle: (status: number | "exited") => void = () => undefined;
    const finished = new Promise<number | "exited">((resolve) => {
      settle = resolve;
    });
    const endGroup = (group: number) =>
      this.options.reaper.reapGroup(group).catch((error: unknown) => console.error(`agent: ending process group ${group} failed`, error));
    const cancel = () => {
      cancelled = true;
      if (subshellPid !== undefined) void endGroup(subshellPid);
      else
        void writeFile(paths.cancel, "").then(
          () => settle(KILLED_STATUS),
          () => settle(KILLED_STATUS),
        );
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      if (run.timeoutMs !== undefined && run.timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => resolve("timeout"), run.timeoutMs);
    });
    const files: FileHandle[] = [];
    let pumping = false;
    let pump = Promise.resolve();
    try {
      files.push(await open(paths.out, "w+"), await open(paths.err, "w+"));
      await Promise.all([writeFile(paths.setup, scripts.setup), writeFile(paths.after, scripts.after)]);
      if (!this.alive) throw this.terminated();
      this.pending.set(token, {
        settle,
        paths: Object.values(paths),
        onPid: (pid) => {
          subshellPid = pid;
          this.subshells.add(pid);
          runningProcessGroups.add(pid);
          if (cancelled) void endGroup(pid);
        },
      });
      if (run.signal.aborted) cancel();
      else run.signal.addEventListener("abort", cancel, { once: true });
      const readers = files.map(
        (file, index) => new OutputReader(file, index === 0 ? "stdout" : "stderr", run.onOutput, run.maxOutputBytes),
      );
      if (run.inSubshell) {
        pumping = true;
        pump = (async () => {
          while (pumping) {
            for (const reader of readers) await reader.readAvailable();
            await sleep(STREAM_READ_INTERVAL_MS);
          }
        })();
      }
      this.shell.stdin?.write(scripts.line);
      const first = await Promise.race([finished, timedOut]);
      pumping = false;
      await pump;
      if (first === "exited") throw this.terminated();
      if (first === "timeout") return { exitCode: 0, timedOut: true, cancelled: false };
      for (const reader of readers) await reader.readToEnd();
      return { exitCode: first, timedOut: false, cancelled };
    } finally {
      pumping = false;
      clearTimeout(timer);
      run.signal.removeEventListener("abort", cancel);
      if (subshellPid !== undefined) {
        this.subshells.delete(subshellPid);
        runningProcessGroups.delete(subshellPid);
      }
      await Promise.all(files.map((file) => file.close()));
      // A command still running (timed out, or cancelled before it began) keeps its files until its status comes.
      if (!this.pending.has(token)) await Promise.all(Object.values(paths).map((path) => unlink(path).catch(() => undefined)));
    }
  }

  private terminated(): AgentError {
    return sessionTerminated(this.options.sessionId, this.exitCode);
  }
}

/** What Cloudflare's server answers for a session whose shell has exited. */
export function sessionTerminated(sessionId: string, exitCode: number | undefined): AgentError {
  return new AgentError(ErrorCode.SESSION_TERMINATED, `Session '${sessionId}' shell exited (exit code: ${exitCode ?? "unknown"})`, {
    sessionId,
    exitCode: exitCode ?? null,
  });
}

/** Hands a growing output file to the caller as text, from where it last read, up to a limit. */
class OutputReader {
  private position = 0;
  private readonly decoder = new StringDecoder("utf8");
  private buffer: Buffer | undefined;

  constructor(
    private readonly file: FileHandle,
    private readonly stream: OutputStream,
    private readonly onOutput: OutputHandler,
    private readonly maxBytes: number,
  ) {}

  /** Reads what is there now; false once a read finds nothing new (or the limit is reached). */
  async readAvailable(): Promise<boolean> {
    const room = Math.min(READ_CHUNK_BYTES, this.maxBytes - this.position);
    if (room <= 0) return false;
    this.buffer ??= Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const { bytesRead } = await this.file.read(this.buffer, 0, room, this.position);
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
