/**
 * Cleans up after hosts that died without closing (SIGKILL, a crash): their containers die with
 * them (each is bound to the host by a guard, see boundToHost), but their runtime directories
 * and cgroups stay behind. All carry the host's pid in their names, so anything named after a
 * pid that no longer runs can go; a container process that outlived its host anyway names the
 * host's runtime directory on its command line, and is killed the same way.
 */
import { readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

/** Entries of `dir` named `<prefix><pid>-...` whose pid is no longer running. */
function deadHostEntries(dir: string, prefix: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => {
    const pid = Number(/^(\d+)-/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : "")?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isRunning(pid);
  });
}

/**
 * SIGKILLs every process whose command line names a runtime directory
 * (`<parent>/<prefix><pid>-...`) of a host that no longer runs: pasta and bubblewrap carry the
 * sandbox's mounts in their arguments; what runs inside the namespace dies with bubblewrap.
 * Returns how many it killed.
 */
export function killDeadHostProcesses(parent: string, prefix: string): number {
  const pattern = new RegExp(`${escapeRegExp(join(parent, prefix))}(\\d+)-`);
  let killed = 0;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue; // Gone meanwhile.
    }
    const hostPid = Number(pattern.exec(commandLine)?.[1]);
    if (!Number.isInteger(hostPid) || hostPid <= 0 || hostPid === process.pid || isRunning(hostPid)) continue;
    try {
      process.kill(pid, "SIGKILL");
      killed++;
    } catch {
      // Gone meanwhile, or not ours to kill.
    }
  }
  return killed;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Removes runtime directories (`<parent>/<prefix><pid>-XXXXXX`) of hosts that no longer run. */
export function removeDeadHostRuntimeDirs(parent: string, prefix: string): void {
  for (const name of deadHostEntries(parent, prefix)) rmSync(join(parent, name), { recursive: true, force: true });
}

/** Removes cgroups (`<parent>/<prefix><pid>-<id>/<key>`) of hosts that no longer run; busy ones stay. */
export function removeDeadHostCgroups(parent: string, prefix: string): void {
  for (const name of deadHostEntries(parent, prefix)) {
    const base = join(parent, name);
    try {
      for (const entry of readdirSync(base, { withFileTypes: true })) {
        if (entry.isDirectory()) rmdirSync(join(base, entry.name));
      }
      rmdirSync(base);
    } catch {
      // Still in use (a process outlived its host): leave it.
    }
  }
}
