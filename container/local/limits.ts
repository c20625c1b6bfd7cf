/**
 * Per-sandbox resource limits with cgroups (the memory and pids controllers): a sandbox that
 * allocates too much is OOM-killed and one that forks without end hits a process cap, instead
 * of starving every other sandbox on the machine. cgroup v1 when the machine mounts its memory
 * and pids controllers (v1 or hybrid machines), else cgroup v2 in a delegated subtree. Without
 * writable cgroups (not root, neither version usable) the host runs without limits and says why.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { removeDeadHostCgroups } from "./leftovers";

export interface ResourceLimits {
  memoryBytes: number;
  maxProcesses: number;
}

export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { memoryBytes: 2 * 1024 ** 3, maxProcesses: 1024 };

const CGROUP_PREFIX = "artifact-sandbox-";
const V2_CONTROLLERS = ["memory", "pids"] as const;

/** Where this process's cgroups are, per version: the directories the host makes its own below. */
export type CgroupLayout =
  | { version: "v1"; memoryDir: string; pidsDir: string }
  | { version: "v2"; dir: string }
  | { version: "none"; reason: string };

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** Mounts from /proc/self/mountinfo: "id parent dev root mountpoint options [optional...] - fstype source superoptions". */
function parseMountInfo(mountInfo: string): Mount[] {
  return mountInfo.split("\n").flatMap((line) => {
    const [left, right] = line.split(" - ");
    const fields = left?.split(" ") ?? [];
    const [fsType, , superOptions] = right?.split(" ") ?? [];
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined || fsType === undefined) return [];
    return [{ root, mountPoint, fsType, superOptions: superOptions?.split(",") ?? [] }];
  });
}

/** A cgroup path from /proc/self/cgroup as a directory under the mount that shows it, if it does. */
function directoryIn(mount: Mount, cgroupPath: string): string | undefined {
  if (mount.root === "/") return join(mount.mountPoint, cgroupPath);
  if (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`))
    return join(mount.mountPoint, cgroupPath.slice(mount.root.length));
  return undefined;
}

/**
 * Which cgroup version the host can use, from /proc/self/cgroup and /proc/self/mountinfo (given
 * as text so that every machine's shape can be tested). v1 wins where both exist: on a hybrid
 * machine the memory and pids controllers belong to v1 and the v2 hierarchy has neither.
 */
export function cgroupLayout(procSelfCgroup: string, mountInfo: string): CgroupLayout {
  const mounts = parseMountInfo(mountInfo);
  const entries = procSelfCgroup
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [hierarchy = "", controllers = "", ...path] = line.split(":");
      return { hierarchy, controllers: controllers.split(","), path: path.join(":") };
    });
  const v1Dir = (controller: string) => {
    const entry = entries.find((candidate) => candidate.hierarchy !== "0" && candidate.controllers.includes(controller));
    const mount = mounts.find((candidate) => candidate.fsType === "cgroup" && candidate.superOptions.includes(controller));
    return entry && mount ? directoryIn(mount, entry.path) : undefined;
  };
  const memoryDir = v1Dir("memory");
  const pidsDir = v1Dir("pids");
  if (memoryDir && pidsDir) return { version: "v1", memoryDir, pidsDir };

  const unified = entries.find((entry) => entry.hierarchy === "0" && entry.controllers.join("") === "");
  const v2Mount = mounts.find((mount) => mount.fsType === "cgroup2");
  const v2Dir = unified && v2Mount ? directoryIn(v2Mount, unified.path) : undefined;
  if (v2Dir) return { version: "v2", dir: v2Dir };
  return { version: "none", reason: "neither cgroup v1 memory and pids controllers nor a cgroup v2 hierarchy is mounted" };
}

/** This machine's layout. */
export function readCgroupLayout(): CgroupLayout {
  try {
    return cgroupLayout(readFileSync("/proc/self/cgroup", "utf8"), readFileSync("/proc/self/mountinfo", "utf8"));
  } catch (error) {
    return { version: "none", reason: `cannot read this process's cgroups (${error instanceof Error ? error.message : String(error)})` };
  }
}

/** One hierarchy the host makes a cgroup per sandbox in: its base and the limit files each gets. */
interface Hierarchy {
  base: string;
  limitFiles: Record<string, string>;
}

export class CgroupLimiter {
  private readonly prepared = new Set<string>();

  private constructor(
    readonly version: "v1" | "v2",
    private readonly hierarchies: Hierarchy[],
  ) {}

  /**
   * A limiter for the layout (this machine's by default), or the reason why limits are off.
   * `hostId` must start with the host's pid and a dash (see leftovers.ts).
   */
  static async create(limits: ResourceLimits, hostId: string, layout: CgroupLayout = readCgroupLayout()): Promise<CgroupLimiter | string> {
    if (layout.version === "none") return layout.reason;
    const name = `${CGROUP_PREFIX}${hostId}`;
    try {
      if (layout.version === "v1") {
        for (const parent of [layout.memoryDir, layout.pidsDir]) removeDeadHostCgroups(parent, CGROUP_PREFIX);
        const hierarchies: Hierarchy[] = [
          { base: join(layout.memoryDir, name), limitFiles: { "memory.limit_in_bytes": String(limits.memoryBytes) } },
          { base: join(layout.pidsDir, name), limitFiles: { "pids.max": String(limits.maxProcesses) } },
        ];
        for (const { base } of hierarchies) await mkdir(base, { recursive: true });
        return new CgroupLimiter("v1", hierarchies);
      }
      const problem = await delegateV2Controllers(layout.dir);
      if (problem) return problem;
      removeDeadHostCgroups(layout.dir, CGROUP_PREFIX);
      const base = join(layout.dir, name);
      await mkdir(base, { recursive: true });
      // The per-sandbox cgroups below the base get the controllers too; the base holds no process.
      await writeFile(join(base, "cgroup.subtree_control"), V2_CONTROLLERS.map((controller) => `+${controller}`).join(" "));
      const limitFiles = { "memory.max": String(limits.memoryBytes), "pids.max": String(limits.maxProcesses) };
      return new CgroupLimiter("v2", [{ base, limitFiles }]);
    } catch (error) {
      return `cannot create cgroups (${error instanceof Error ? error.message : String(error)}); run as root for limits`;
    }
  }

  /** What the start-up line says: "cgroup v1 (...)". */
  describe(limits: ResourceLimits): string {
    return `cgroup ${this.version} (${Math.round(limits.memoryBytes / 1024 ** 2)} MiB of memory and ${limits.maxProcesses} processes per sandbox)`;
  }

  /**
   * Creates (or reuses) the sandbox's cgroups and returns the cgroup.procs files to join.
   * Synchronous, so that two execs starting at once cannot interleave it. The cgroups live as
   * long as the host: removing one while a new session joins it would race.
   */
  prepare(sandboxId: string): string[] {
    const fresh = !this.prepared.has(sandboxId);
    const procs = this.hierarchies.map(({ base, limitFiles }) => {
      const dir = join(base, sandboxId);
      if (fresh) {
        mkdirSync(dir, { recursive: true });
        for (const [file, value] of Object.entries(limitFiles)) writeFileSync(join(dir, file), value);
      }
      return join(dir, "cgroup.procs");
    });
    this.prepared.add(sandboxId);
    return procs;
  }

  /**
   * Removes the cgroups this host made, once its sandboxes have stopped. The kernel empties a
   * cgroup only after the killed processes are reaped, a little after their namespace ended, so
   * a busy cgroup is retried for up to two seconds (then left behind, best effort).
   */
  async releaseAll(): Promise<void> {
    const dirs = this.hierarchies.flatMap(({ base }) => [...[...this.prepared].map((key) => join(base, key)), base]);
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
 * Makes the memory and pids controllers available to cgroups below `dir` (cgroup v2): `dir` must
 * offer them (cgroup.controllers) and enable them for its children (cgroup.subtree_control),
 * which the kernel refuses while `dir` itself holds processes, unless it is the root. Returns
 * the reason it cannot, or undefined.
 */
async function delegateV2Controllers(dir: string): Promise<string | undefined> {
  const offered = readWords(join(dir, "cgroup.controllers"));
  const missing = V2_CONTROLLERS.filter((controller) => !offered.includes(controller));
  if (missing.length > 0) return `the cgroup v2 hierarchy at ${dir} does not offer the ${missing.join(" and ")} controller(s)`;
  const enabled = readWords(join(dir, "cgroup.subtree_control"));
  const toEnable = V2_CONTROLLERS.filter((controller) => !enabled.includes(controller));
  if (toEnable.length === 0) return undefined;
  try {
    await writeFile(join(dir, "cgroup.subtree_control"), toEnable.map((controller) => `+${controller}`).join(" "));
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `cannot enable ${toEnable.join(" and ")} for the cgroups below ${dir} (${reason}); run the host in a delegated cgroup v2 subtree that holds no processes of its own`;
  }
}

function readWords(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").trim().split(/\s+/).filter(Boolean) : [];
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
