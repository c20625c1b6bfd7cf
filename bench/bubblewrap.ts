/**
 * The physical floor of a sandboxed command: one raw bubblewrap exec of `true` in a fresh
 * namespace (user, pid, ipc, uts, net, cgroup; /usr read-only, /proc, /dev, a /tmp and the
 * workspace), spawned from Node as the local host spawns its containers.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { type PoolRun, runPool } from "./stats";

function bubblewrapArgs(workspace: string, command: string[] = ["/bin/true"]): string[] {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"];
  for (const dir of ["bin", "lib", "lib64", "sbin"]) if (existsSync(`/usr/${dir}`)) args.push("--symlink", `usr/${dir}`, `/${dir}`);
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", workspace, "/workspace", "--chdir", "/workspace", ...command);
  return args;
}

function rawExec(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bwrap", args, { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}`))));
  });
}

/** Milliseconds for one raw exec of a shell command (the floor of the same command run as a job). */
export async function rawCommandMs(stateDir: string, command: string): Promise<number> {
  const workspace = await mkdtemp(join(stateDir, "bwrap-command-"));
  try {
    const started = performance.now();
    await rawExec(bubblewrapArgs(workspace, ["/bin/bash", "-c", command]));
    return performance.now() - started;
  } finally {
    await rm(workspace, { recursive: true, force: true });
  }
}

/** `count` raw execs with `concurrency` at once, in a scratch workspace under `stateDir`. */
export async function bubblewrapFloor(stateDir: string, count: number, concurrency: number): Promise<PoolRun> {
  const workspace = await mkdtemp(join(stateDir, "bwrap-floor-"));
  try {
    const args = bubblewrapArgs(workspace);
    await runPool(8, 1, () => rawExec(args));
    return await runPool(count, concurrency, () => rawExec(args));
  } finally {
    await rm(workspace, { recursive: true, force: true });
  }
}
