/**
 * Memory of the local stack, read from /proc: the stack's own processes (workerd, and the node
 * process running both the container host and wrangler's dev server) and the containers (pasta,
 * two bwrap processes and the agent each).
 */
import { descendantsOf, type ProcessInfo, processes } from "../scripts/processes";
import { sleep } from "./stats";

const isContainerProcess = (info: ProcessInfo) => info.commandLine.includes("sandbox-agent/agent.mjs");

export interface StackMemory {
  workerdPeakRssKiB: number;
  /** The node process serving the container host and wrangler's dev server (workerd's parent), peak RSS. */
  hostPeakRssKiB: number;
  /** Every workerd and node process of the stack (not the containers), current RSS summed. */
  stackRssKiB: number;
  /** The same by role: workerd, host (the node process running the container host and the dev server), other. */
  rssByRoleKiB: Record<string, number>;
  containers: number;
  containersPssKiB: number;
}

export function stackMemory(rootPid: number): StackMemory {
  const all = processes();
  const tree = descendantsOf(rootPid, all);
  const own = [...all.filter((info) => info.pid === rootPid), ...tree].filter((info) => !isContainerProcess(info));
  const workerd = own.filter((info) => info.commandLine.includes("workerd"));
  const host = own.find((info) => tree.some((child) => child.parentPid === info.pid && child.commandLine.includes("workerd")));
  const containerProcesses = tree.filter(isContainerProcess);
  const rssByRoleKiB: Record<string, number> = {};
  for (const info of own.filter((candidate) => /workerd|node/.test(candidate.commandLine))) {
    const role = info === host ? "host" : info.commandLine.includes("workerd") ? "workerd" : "other";
    rssByRoleKiB[role] = (rssByRoleKiB[role] ?? 0) + info.rssKiB;
  }
  return {
    rssByRoleKiB,
    workerdPeakRssKiB: workerd.reduce((sum, info) => sum + info.peakRssKiB, 0),
    hostPeakRssKiB: host?.peakRssKiB ?? 0,
    stackRssKiB: own.filter((info) => /workerd|node/.test(info.commandLine)).reduce((sum, info) => sum + info.rssKiB, 0),
    containers: containerProcesses.filter((info) => info.commandLine.startsWith("/run/sandbox-agent/node")).length,
    containersPssKiB: containerProcesses.reduce((sum, info) => sum + info.pssKiB, 0),
  };
}

/** Samples the stack's memory every `intervalMs` until stopped; reports the sample whose summed RSS was highest. */
export function sampleStackRss(rootPid: number, intervalMs = 100): { stop(): Promise<StackMemory> } {
  let peak = stackMemory(rootPid);
  let running = true;
  const loop = (async () => {
    while (running) {
      const sample = stackMemory(rootPid);
      if (sample.stackRssKiB > peak.stackRssKiB) peak = sample;
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

export const mib = (kib: number) => kib / 1024;
