/**
 * Cleans up after hosts that died without closing (SIGKILL, a crash): their containers died with
 * them, but their runtime directories and cgroups stay behind. Both carry the host's pid in
 * their names, so anything named after a pid that no longer runs can go.
 */
import { readdirSync, rmdirSync, rmSync } from "node:fs";
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
