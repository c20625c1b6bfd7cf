/**
 * Persistent isolated sessions: one long-lived bubblewrap namespace per sandbox, with a small
 * agent (agent/sessionAgent.mjs) that forks each command inside it. An exec then costs a fork
 * instead of a namespace setup (about 1 ms against 8 ms here). Isolation is the same as a
 * spawn per exec; what a command leaves running is killed when it ends.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { bubblewrapArgs, type RunLimits, type RunRequest, type RunResult } from "./isolation";
import { type CgroupLimiter, inCgroups } from "./limits";

const AGENT_PATH = fileURLToPath(new URL("./agent/sessionAgent.mjs", import.meta.url));
/** Where the agent and the node binary that runs it appear inside the sandbox (read-only). */
const AGENT_IN_SANDBOX = "/run/sandbox-agent/agent.mjs";
const NODE_IN_SANDBOX = "/run/sandbox-agent/node";
/** The host's own deadline beyond a command's timeout, should the agent itself stop answering. */
const BACKSTOP_MS = 5_000;

const AgentResult = z.object({
  id: z.number(),
  exitCode: z.number().nullable(),
  timedOut: z.boolean(),
  durationMs: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
});

interface Running {
  id: number;
  resolve: (result: RunResult) => void;
  backstop: NodeJS.Timeout;
}

export class SandboxSession {
  private readonly child: ChildProcessWithoutNullStreams;
  /** The one command the agent runs now; the host sends the next only when it has answered. */
  private running: Running | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private ended = false;
  lastUsedAt = Date.now();

  constructor(
    workspaceDir: string,
    private readonly limits: RunLimits,
    cgroupProcs: string[],
    private readonly onEnd: () => void,
  ) {
    const args = bubblewrapArgs(workspaceDir, { cwd: "/workspace", env: {}, network: false });
    args.push("--ro-bind", AGENT_PATH, AGENT_IN_SANDBOX, "--ro-bind", process.execPath, NODE_IN_SANDBOX);
    args.push(NODE_IN_SANDBOX, AGENT_IN_SANDBOX);
    const sandboxed = inCgroups(cgroupProcs, "bwrap", args);
    this.child = spawn(sandboxed.command, sandboxed.args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
    createInterface({ input: this.child.stdout }).on("line", (line) => this.settle(line));
    createInterface({ input: this.child.stderr }).on("line", (line) => console.error(`sandbox session agent: ${line}`));
    this.child.on("exit", () => this.end("the sandbox session ended while the command ran (did it kill every process?)"));
    this.child.stdin.on("error", () => {});
  }

  get alive(): boolean {
    return !this.ended;
  }

  /**
   * Runs one command after those before it (a sandbox runs one command at a time, so each
   * command's deadline counts from its own start); aborting `signal` ends or skips it.
   */
  exec(request: RunRequest, signal?: AbortSignal): Promise<RunResult> {
    this.lastUsedAt = Date.now();
    const result = this.queue.then(() =>
      signal?.aborted ? failure({ timedOut: false, exitCode: 137, message: "" }) : this.start(request, signal),
    );
    this.queue = result;
    return result;
  }

  private start(request: RunRequest, signal?: AbortSignal): Promise<RunResult> {
    if (this.ended) return Promise.resolve(failure({ timedOut: false, exitCode: 137, message: "the sandbox session had ended" }));
    const id = this.nextId++;
    signal?.addEventListener(
      "abort",
      () => {
        if (this.running?.id === id) this.child.stdin.write(`${JSON.stringify({ cancel: id })}\n`);
      },
      { once: true },
    );
    return new Promise((resolve) => {
      const backstop = setTimeout(() => {
        // The agent missed its own deadline: end the whole session, which kills everything in it.
        this.running = undefined;
        resolve(failure({ timedOut: true, exitCode: null, message: "" }));
        this.close();
      }, request.timeoutMs + BACKSTOP_MS);
      this.running = { id, resolve, backstop };
      const line = JSON.stringify({ id, ...request, maxOutputBytes: this.limits.maxOutputBytes });
      this.child.stdin.write(`${line}\n`);
    });
  }

  close(): void {
    if (this.child.pid !== undefined && this.child.exitCode === null) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }

  private settle(line: string): void {
    const parsed = AgentResult.safeParse(JSON.parse(line));
    if (!parsed.success) return;
    const result = parsed.data;
    const running = this.running;
    if (running?.id !== result.id) return;
    this.running = undefined;
    clearTimeout(running.backstop);
    this.lastUsedAt = Date.now();
    running.resolve({
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      stdout: Buffer.from(result.stdout, "base64"),
      stderr: Buffer.from(result.stderr, "base64"),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
    });
  }

  private end(message: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.running) {
      clearTimeout(this.running.backstop);
      this.running.resolve(failure({ timedOut: false, exitCode: 137, message }));
      this.running = undefined;
    }
    this.onEnd();
  }
}

function failure(fields: { timedOut: boolean; exitCode: number | null; message: string }): RunResult {
  return {
    exitCode: fields.exitCode,
    timedOut: fields.timedOut,
    durationMs: 0,
    stdout: Buffer.alloc(0),
    stderr: Buffer.from(fields.message ? `${fields.message}\n` : ""),
    stdoutTruncated: false,
    stderrTruncated: false,
  };
}

/** One session per sandbox ID, started on first use and closed after sitting idle. */
export class SessionPool {
  private readonly sessions = new Map<string, SandboxSession>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly limits: RunLimits,
    private readonly limiter: CgroupLimiter | undefined,
    idleMs = 5 * 60 * 1000,
  ) {
    this.reaper = setInterval(
      () => {
        for (const [sandboxId, session] of this.sessions) {
          if (Date.now() - session.lastUsedAt > idleMs) {
            this.sessions.delete(sandboxId);
            session.close();
          }
        }
      },
      Math.min(idleMs, 30_000),
    );
    this.reaper.unref();
  }

  exec(sandboxId: string, workspaceDir: string, request: RunRequest, signal?: AbortSignal): Promise<RunResult> {
    let session = this.sessions.get(sandboxId);
    if (!session?.alive) {
      const cgroupProcs = this.limiter?.prepare(sandboxId) ?? [];
      const started: SandboxSession = new SandboxSession(workspaceDir, this.limits, cgroupProcs, () => {
        if (this.sessions.get(sandboxId) === started) this.sessions.delete(sandboxId);
      });
      session = started;
      this.sessions.set(sandboxId, session);
    }
    return session.exec(request, signal);
  }

  closeAll(): void {
    clearInterval(this.reaper);
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
