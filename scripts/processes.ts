/**
 * The machine's processes and their memory, read from /proc (Linux only, like the local host):
 * how the benchmark and the memory tests measure the stack; and whether a port is taken.
 */

import { readdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";

export interface ProcessInfo {
  pid: number;
  parentPid: number;
  commandLine: string;
  /** Resident memory now and its peak, and the proportional share (PSS: shared pages split among their users), in KiB. */
  rssKiB: number;
  peakRssKiB: number;
  pssKiB: number;
}

/** Every process on the machine, read from /proc (Linux only, like the local host). */
export function processes(): ProcessInfo[] {
  const list: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      const rollup = readFileSync(`/proc/${entry}/smaps_rollup`, "utf8");
      const pssKiB = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      list.push({ pid: Number(entry), parentPid: field("PPid"), commandLine, rssKiB: field("VmRSS"), peakRssKiB: field("VmHWM"), pssKiB });
    } catch {
      // The process ended while we looked.
    }
  }
  return list;
}

export function descendantsOf(rootPid: number, all: ProcessInfo[]): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  let frontier = [rootPid];
  while (frontier.length > 0) {
    const children = all.filter((info) => frontier.includes(info.parentPid));
    found.push(...children);
    frontier = children.map((child) => child.pid);
  }
  return found;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
