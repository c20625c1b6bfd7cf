/**
 * Per-sandbox resource limits with cgroup v1 (the memory and pids controllers): a sandbox that
 * allocates too much is OOM-killed and one that forks without end hits a process cap, instead
 * of starving every other sandbox on the machine. Without writable cgroups (not root, or no v1
 * controllers) the host runs without limits and says so once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { removeDeadHostCgroups } from "./leftovers";

export interface ResourceLimits {
  memoryBytes: number;
  maxProcesses: number;
}

export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { memoryBytes: 2 * 1024 ** 3, maxProcesses: 1024 };

const CONTROLLERS = ["memory", "pids"] as const;
const CGROUP_PREFIX = "artifact-sandbox-";
type Controller = (typeof CONTROLLERS)[number];

/** This process's own cgroup directory for a v1 controller, e.g. /sys/fs/cgroup/memory/some/path. */
function ownCgroupDir(controller: Controller): string | undefined {
  const root = `/sys/fs/cgroup/${controller}`;
  if (!existsSync(root)) return undefined;
  const line = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((entry) => entry.split(":")[1]?.split(",").includes(controller));
  const path = line?.split(":")[2];
  return path === undefined ? undefined : join(root, path);
}

export class CgroupLimiter {
  private readonly prepared = new Set<string>();

  private constructor(
    private readonly bases: Record<Controller, string>,
    private readonly limits: ResourceLimits,
  ) {}

  /**
   * A limiter if cgroup v1 memory and pids controllers are writable here, else the reason why
   * not. `hostId` must start with the host's pid and a dash (see leftovers.ts).
   */
  static async create(limits: ResourceLimits, hostId: string): Promise<CgroupLimiter | string> {
    const memory = ownCgroupDir("memory");
    const pids = ownCgroupDir("pids");
    if (!memory || !pids) return "cgroup v1 memory/pids controllers are not mounted";
    for (const parent of [memory, pids]) removeDeadHostCgroups(parent, CGROUP_PREFIX);
    const bases = { memory: join(memory, `${CGROUP_PREFIX}${hostId}`), pids: join(pids, `${CGROUP_PREFIX}${hostId}`) };
    try {
      for (const base of Object.values(bases)) await mkdir(base, { recursive: true });
    } catch (error) {
      return `cannot create cgroups (${error instanceof Error ? error.message : String(error)}); run as root for limits`;
    }
    return new CgroupLimiter(bases, limits);
  }

  /**
   * Creates (or reuses) the sandbox's cgroups and returns the cgroup.procs files to join.
   * Synchronous, so that two execs starting at once cannot interleave it. The cgroups live as
   * long as the host: removing one while a new session joins it would race.
   */
  prepare(sandboxId: string): string[] {
    const memoryDir = join(this.bases.memory, sandboxId);
    const pidsDir = join(this.bases.pids, sandboxId);
    if (!this.prepared.has(sandboxId)) {
      mkdirSync(memoryDir, { recursive: true });
      mkdirSync(pidsDir, { recursive: true });
      writeFileSync(join(memoryDir, "memory.limit_in_bytes"), String(this.limits.memoryBytes));
      writeFileSync(join(pidsDir, "pids.max"), String(this.limits.maxProcesses));
      this.prepared.add(sandboxId);
    }
    return [join(memoryDir, "cgroup.procs"), join(pidsDir, "cgroup.procs")];
  }

  /**
   * Removes the cgroups this host made, once its sandboxes have stopped. The kernel empties a
   * cgroup only after the killed processes are reaped, a little after their namespace ended, so
   * a busy cgroup is retried for up to two seconds (then left behind, best effort).
   */
  async releaseAll(): Promise<void> {
    const dirs = Object.values(this.bases).flatMap((base) => [...[...this.prepared].map((key) => join(base, key)), base]);
    for (const dir of dirs) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const removed = await rmdir(dir).then(
          () => true,
          (error: unknown) => !(error instanceof Error && "code" in error && error.code === "EBUSY"),
        );
        if (removed) break;
        await new Promise((done) => setTimeout(done, 100));
      }
    }
    this.prepared.clear();
  }
}

/**
 * Wraps a command so that it joins the given cgroups before it starts: a tiny shell writes its
 * own PID into each cgroup.procs file, then execs the command, so every descendant is inside.
 */
export function inCgroups(procsFiles: string[], command: string, args: string[]): { command: string; args: string[] } {
  if (procsFiles.length === 0) return { command, args };
  const script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"';
  return { command: "/bin/sh", args: ["-c", script, "sandbox-limits", ...procsFiles, "--", command, ...args] };
}
