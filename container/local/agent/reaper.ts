/**
 * Ends every process a command started: in its session (a sessionless command is started in a
 * session of its own) or its process group (a streamed command's subshell), rescanning /proc until
 * a scan finds nothing, so a fork chain that escapes one snapshot is caught by the next. A process
 * that left them (setsid) outlives its command, as it does under Cloudflare's container server,
 * which kills nothing when a command returns.
 */
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** A fresh pid namespace numbers its first processes from 1; a host process is never this low. */
const MAX_CONTAINED_AGENT_PID = 16;
/** Bounds the sweeps so a pathological case cannot wedge the agent forever. */
const REAP_DEADLINE_MS = 10_000;

export type Reaper = {
  /** True inside the sandbox's own pid namespace. */
  contained: boolean;
  reap(sessionId: number | undefined): Promise<void>;
  /** Ends every process of one process group (a streamed command's subshell and what it started). */
  reapGroup(processGroupId: number): Promise<void>;
};

/** Refuses contained mode on a host: killing "everything but pid 1" there would be a disaster. */
export function assertContainable(): void {
  if (process.pid > MAX_CONTAINED_AGENT_PID) {
    throw new Error(`--contain needs the agent to run in its own pid namespace (pid ${process.pid} > ${MAX_CONTAINED_AGENT_PID})`);
  }
}

type ProcessEntry = { pid: number; processGroupId: number; sessionId: number };

/**
 * Live processes from /proc. Zombies and dying tasks stay listed until their parent reaps them,
 * but they run nothing and hold no pipes: they count as gone.
 */
function liveProcesses(): ProcessEntry[] {
  const found: ProcessEntry[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp session …"; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    if (state === "Z" || state === "X" || state === "x") continue;
    found.push({ pid, processGroupId: Number(fields[2]), sessionId: Number(fields[3]) });
  }
  return found;
}

/** SIGKILLs every live process the filter selects, rescanning until a sweep finds none. */
async function sweep(selects: (entry: ProcessEntry) => boolean): Promise<void> {
  const deadline = Date.now() + REAP_DEADLINE_MS;
  for (;;) {
    const targets = liveProcesses().filter(selects);
    if (targets.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${targets.length} processes survived repeated SIGKILL sweeps`);
    for (const { pid } of targets) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone between the scan and the kill, which is what we want.
      }
    }
    await sleep(1);
  }
}

export function createReaper(contained: boolean): Reaper {
  return {
    contained,
    reap: async (sessionId) => {
      if (sessionId !== undefined) await sweep((entry) => entry.sessionId === sessionId && entry.pid !== process.pid);
    },
    reapGroup: (processGroupId) => sweep((entry) => entry.processGroupId === processGroupId && entry.pid !== process.pid),
  };
}
