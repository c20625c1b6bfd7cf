/**
 * CPU time spent during a benchmark phase, read from /proc (Linux only, like the local host): the
 * whole machine's, and the local stack's by role. Throughput at concurrency is CPU-bound on these
 * 2-core machines, so CPU per job beside CPU per raw exec says where a throughput ratio comes from,
 * and it moves less with the machine's load than a rate does.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { descendantsOf, type ProcessInfo, processes } from "../scripts/processes";

/**
 * Who spent it, by the live process that reaped it: each sandbox's container server (our agent,
 * a node process), the rest of the sandboxes' processes (the runner's scripts, the commands,
 * bwrap, pasta), workerd, and the stack's node process (the container host and wrangler's dev
 * server).
 */
export type CpuRole = "containerServer" | "sandboxes" | "workerd" | "host";

const NO_CPU = (): Record<CpuRole, number> => ({ containerServer: 0, sandboxes: 0, workerd: 0, host: 0 });

export interface CpuUse {
  /** Busy CPU of the whole machine (user, system, interrupts; not time stolen by the hypervisor), in ms. */
  machineMs: number;
  byRoleMs: Record<CpuRole, number>;
}

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const ticksToMs = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;

function machineBusyMs(): number {
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return ticksToMs(user + nice + system + irq + softirq);
}

/**
 * A process's own CPU and that of the children it has reaped, in ms. A process that ends is
 * reaped by a live ancestor, so summing this over the live processes of a role counts every
 * short-lived process (a sandbox's forks, its commands) once.
 */
function cumulativeMs(pid: number): number {
  return statTicksMs(pid, [UTIME, STIME, CUTIME, CSTIME]);
}

// Fields of /proc/<pid>/stat counted from the one after the command's closing parenthesis.
const [UTIME, STIME, CUTIME, CSTIME] = [11, 12, 13, 14];

function statTicksMs(pid: number | "self", fieldIndexes: number[]): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ticksToMs(fieldIndexes.reduce((sum, index) => sum + Number(fields[index] ?? 0), 0));
  } catch {
    return 0;
  }
}

const isContainerServer = (info: ProcessInfo) => info.commandLine.startsWith("/run/sandbox-agent/node ");
const isSandboxRoot = (info: ProcessInfo) => /^(pasta|bwrap) /.test(info.commandLine) || info.commandLine.includes("sandbox-host");

/** The role of each process of the stack: the nearest ancestor that names one decides. */
function roles(stackPid: number): Map<number, CpuRole> {
  const all = processes();
  const tree = [...all.filter((info) => info.pid === stackPid), ...descendantsOf(stackPid, all)];
  const byPid = new Map(tree.map((info) => [info.pid, info]));
  const role = new Map<number, CpuRole>();
  for (const info of tree) {
    if (isContainerServer(info)) {
      role.set(info.pid, "containerServer");
      continue;
    }
    for (let at: ProcessInfo | undefined = info; at; at = byPid.get(at.parentPid)) {
      if (isSandboxRoot(at)) {
        role.set(info.pid, "sandboxes");
        break;
      }
      if (at.commandLine.includes("workerd")) {
        role.set(info.pid, "workerd");
        break;
      }
      if (tree.some((child) => child.parentPid === at?.pid && child.commandLine.includes("workerd"))) {
        role.set(info.pid, "host");
        break;
      }
    }
  }
  return role;
}

function snapshot(stackPid: number): CpuUse {
  const byRoleMs = NO_CPU();
  for (const [pid, role] of roles(stackPid)) byRoleMs[role] += cumulativeMs(pid);
  return { machineMs: machineBusyMs(), byRoleMs };
}

/** Runs `phase` and returns what it returned with the CPU spent meanwhile, the stack's by role. */
export async function withCpu<T>(stackPid: number | undefined, phase: () => Promise<T>): Promise<{ result: T; cpu: CpuUse }> {
  if (stackPid === undefined) throw new Error("The stack's process has no pid, so its CPU cannot be read");
  const before = snapshot(stackPid);
  const result = await phase();
  const after = snapshot(stackPid);
  const byRoleMs = { ...after.byRoleMs };
  for (const key of Object.keys(byRoleMs) as CpuRole[]) byRoleMs[key] -= before.byRoleMs[key];
  return { result, cpu: { machineMs: after.machineMs - before.machineMs, byRoleMs } };
}

export interface FloorCpu {
  /** Busy CPU of the whole machine meanwhile, in ms. */
  machineMs: number;
  /** CPU of the processes this one started and reaped meanwhile (the floor's bwrap execs), in ms. */
  reapedMs: number;
}

/** Runs `phase` (which starts processes of its own, such as raw bwrap execs) with the CPU spent meanwhile. */
export async function withOwnChildrenCpu<T>(phase: () => Promise<T>): Promise<{ result: T; cpu: FloorCpu }> {
  const reaped = () => statTicksMs("self", [CUTIME, CSTIME]);
  const [machineBefore, reapedBefore] = [machineBusyMs(), reaped()];
  const result = await phase();
  return { result, cpu: { machineMs: machineBusyMs() - machineBefore, reapedMs: reaped() - reapedBefore } };
}
