/**
 * Runs one command for one sandbox, isolated with bubblewrap: new user, pid, net, ipc, uts and
 * mount namespaces, the host system read-only, only the sandbox's workspace writable, a private
 * /tmp. `runIsolated` spawns a namespace per exec; session.ts keeps one per sandbox instead.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import type { z } from "zod";
import { relativeTo, WORKSPACE_ROOT } from "../../schemas/ids";
import type { HostExecRequest } from "../../schemas/sandboxHost";
import { inCgroups } from "./limits";

export type IsolationMode = "bubblewrap" | "none";

export interface RunLimits {
  /** Bytes kept of each of stdout and stderr; the rest is counted and reported as truncated. */
  maxOutputBytes: number;
}

/** What the host's exec route accepts, after validation. */
export type RunRequest = z.output<typeof HostExecRequest>;

export interface RunResult {
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

const SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Host secrets that a read-only /etc would otherwise expose to the job.
const MASKED_ETC_FILES = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers"];

/**
 * bubblewrap's arguments up to the command: the namespaces, the read-only host, the writable
 * workspace, the working directory and a clean environment.
 */
export function bubblewrapArgs(workspaceDir: string, request: Pick<RunRequest, "cwd" | "env" | "network">): string[] {
  const args = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"];
  if (!request.network) args.push("--unshare-net");
  args.push("--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox");
  args.push("--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc");
  for (const dir of ["bin", "lib", "lib64", "sbin"]) {
    args.push("--symlink", `usr/${dir}`, `/${dir}`);
  }
  for (const file of MASKED_ETC_FILES) {
    if (existsSync(file)) args.push("--ro-bind", "/dev/null", file);
  }
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", workspaceDir, WORKSPACE_ROOT);
  args.push("--chdir", request.cwd, "--clearenv");
  const env = { PATH: SANDBOX_PATH, HOME: WORKSPACE_ROOT, LANG: "C.UTF-8", ...request.env };
  for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
  return args;
}

/** Collects a stream up to `limit` bytes and counts the rest. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Runs one command in a namespace of its own; `cgroupProcs` are the cgroups it joins first, and
 * aborting `signal` kills it.
 */
export function runIsolated(
  mode: IsolationMode,
  workspaceDir: string,
  request: RunRequest,
  limits: RunLimits,
  cgroupProcs: string[] = [],
  signal?: AbortSignal,
): Promise<RunResult> {
  const started = performance.now();
  const sandboxed = inCgroups(cgroupProcs, "bwrap", [...bubblewrapArgs(workspaceDir, request), "/bin/sh", "-c", request.command]);
  const child =
    mode === "bubblewrap"
      ? spawn(sandboxed.command, sandboxed.args, { stdio: ["pipe", "pipe", "pipe"], detached: true })
      : spawn("/bin/sh", ["-c", request.command], {
          cwd: `${workspaceDir}/${relativeTo(WORKSPACE_ROOT, request.cwd) ?? ""}`,
          env: { PATH: SANDBOX_PATH, HOME: workspaceDir, LANG: "C.UTF-8", ...request.env },
          stdio: ["pipe", "pipe", "pipe"],
          detached: true,
        });
  const stdout = new CappedBuffer(limits.maxOutputBytes);
  const stderr = new CappedBuffer(limits.maxOutputBytes);
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  // A command that never reads stdin closes the pipe early; that is not an error.
  child.stdin.on("error", () => {});
  child.stdin.end(request.stdin ?? "");

  let timedOut = false;
  const killTree = () => {
    // bwrap leads its own process group; its in-namespace init dies with it (--die-with-parent),
    // and the kernel then kills every process left in the pid namespace, daemons included.
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killTree();
  }, request.timeoutMs);
  // The client went away (the job was cancelled): end the command the same way.
  signal?.addEventListener("abort", killTree, { once: true });

  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      // Killed by a signal (say, out of memory): report it the way shells do, 128 + the signal number.
      const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : null);
      resolve({
        exitCode: timedOut ? null : exitCode,
        timedOut,
        durationMs: Math.round(performance.now() - started),
        stdout: stdout.bytes(),
        stderr: stderr.bytes(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      });
    });
  });
}

/** True when bubblewrap is installed and may create the namespaces we need on this kernel. */
export function bubblewrapWorks(): boolean {
  const probe = spawnSync("bwrap", ["--unshare-all", "--ro-bind", "/", "/", "/bin/true"], { stdio: "ignore", timeout: 10_000 });
  return probe.status === 0;
}

/**
 * Makes bubblewrap available: installs it with apt when running as root, otherwise explains
 * the one command to run. Returns an error message, or undefined when it is ready.
 */
export function ensureBubblewrap(log: (line: string) => void): string | undefined {
  if (bubblewrapWorks()) return undefined;
  const installed = spawnSync("bwrap", ["--version"], { stdio: "ignore" }).status === 0;
  if (!installed && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    log("bubblewrap is missing; installing it with apt-get (once)...");
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    spawnSync("apt-get", ["install", "-y", "-qq", "bubblewrap"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (bubblewrapWorks()) return undefined;
  }
  if (!installed) {
    return "bubblewrap (bwrap) is required to isolate sandboxes. Install it with:\n\n    sudo apt-get install -y bubblewrap\n\nor run with SANDBOX_ISOLATION=none to run jobs WITHOUT isolation (trusted code only).";
  }
  return "bubblewrap is installed but cannot create user namespaces here (check kernel.unprivileged_userns_clone or run as root). SANDBOX_ISOLATION=none runs jobs WITHOUT isolation (trusted code only).";
}
