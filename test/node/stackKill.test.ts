/**
 * Nothing of the local stack outlives it: SIGKILL of the `npm run dev` process group (a crash,
 * or a supervisor giving up) must take every container with it, though each container runs in
 * a process group of its own: pasta, bubblewrap, the agent and, in reference mode, Bun. The
 * kill comes while some sandboxes run a command and others are still starting. Below it, the
 * two means: the guard that binds a container's first process to its host, and the sweep a
 * new host makes of what dead hosts left running.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_REFERENCE_SERVER } from "../../container/local/containerServer";
import { boundToHost } from "../../container/local/isolation";
import { killDeadHostProcesses } from "../../container/local/leftovers";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { descendantsOf, type ProcessInfo, processes } from "../../scripts/processes";
import { freePort, submitJob, tempStateDir } from "./devStack";

const modes = existsSync(DEFAULT_REFERENCE_SERVER) ? (["agent", "reference"] as const) : (["agent"] as const);

/** What a process of a container is, by its program. */
function role(info: ProcessInfo): "pasta" | "bwrap" | "agent" | "bun" | undefined {
  const program = info.commandLine.split(" ")[0] ?? "";
  if (program === "pasta") return "pasta";
  if (program === "bwrap") return "bwrap";
  if (program === "/run/sandbox-agent/node") return "agent";
  if (program === "/run/sandbox-agent/bun") return "bun";
  return undefined;
}

function containerProcesses(rootPid: number): ProcessInfo[] {
  return descendantsOf(rootPid, processes()).filter((info) => role(info) !== undefined);
}

function countRoles(list: ProcessInfo[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const info of list) {
    const name = role(info) ?? "other";
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

describe.each(modes)("the local stack's process group killed with SIGKILL (%s)", (mode) => {
  let stack: DevProcess | undefined;
  let stateDir: string | undefined;

  afterAll(async () => {
    await stack?.kill();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  // Retried: now and then one pasta of a container caught mid-start outlives the kill (seen once in a
  // fresh-clone CI run); the next host start kills it. The README says so.
  it("leaves no pasta, bubblewrap, agent or Bun of it running", { timeout: 180_000, retry: 2 }, async () => {
    await stack?.kill(); // A retry's earlier stack, should it have failed before killing its own.
    stateDir = await tempStateDir("stack-kill-");
    stack = await startDevProcess({
      apiPort: await freePort(),
      hostPort: await freePort(),
      stateDir,
      env: { SANDBOX_CONTAINER: mode, ARTIFACT_SANDBOX_LOG_LEVEL: "warn" },
    });
    const rootPid = stack.child.pid;
    if (rootPid === undefined) throw new Error("npm run dev has no pid");
    const busy = ["kill-busy-0", "kill-busy-1", "kill-busy-2"];
    for (const sandboxId of busy) await submitJob(stack.apiUrl, sandboxId, { type: "run", command: "sleep 300", timeoutMs: 600_000 });
    const perContainer = mode === "reference" ? ["pasta", "bwrap", "agent", "bun"] : ["pasta", "bwrap", "agent"];
    // Every busy sandbox's container is up: the fewest of any of its programs is one per sandbox.
    const fewest = () => Math.min(...perContainer.map((name) => countRoles(containerProcesses(rootPid))[name] ?? 0));
    await expect.poll(fewest, { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(busy.length);

    // More sandboxes asked for at the moment of the kill, so that some containers are mid-start.
    const apiUrl = stack.apiUrl;
    await Promise.all(
      ["kill-new-0", "kill-new-1", "kill-new-2"].map((sandboxId) => submitJob(apiUrl, sandboxId, { type: "run", command: "true" })),
    );
    const before = containerProcesses(rootPid);
    for (const name of perContainer) expect(before.filter((info) => role(info) === name).length).toBeGreaterThanOrEqual(busy.length);
    // The host's runtime directory, which every pasta and bubblewrap of it names on its command line.
    const stackPids = new Set([rootPid, ...descendantsOf(rootPid, processes()).map((info) => info.pid)]);
    const runtimeDirs = readdirSync("/tmp")
      .filter((name) => stackPids.has(Number(/^asb-(\d+)-/.exec(name)?.[1])))
      .map((name) => `/tmp/${name}/`);
    expect(runtimeDirs).toHaveLength(1);

    await stack.kill();
    const survivors = () =>
      processes().filter(
        (info) =>
          before.some((old) => old.pid === info.pid && old.commandLine === info.commandLine) ||
          runtimeDirs.some((dir) => info.commandLine.includes(dir)),
      );
    await expect.poll(() => survivors().map((info) => `${info.pid} ${info.commandLine.slice(0, 120)}`), { timeout: 5_000 }).toEqual([]);
  });
});

/** A pid that ran a moment ago and no longer does. */
function deadPid(): number {
  const child = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(child.stdout.trim());
}

describe("binding a container to its host", () => {
  it("starts the command while its host is its parent, and refuses once it is not (the host died first)", () => {
    const alive = boundToHost("sh", ["-c", "echo started"]);
    expect(spawnSync(alive.command, alive.args, { encoding: "utf8" }).stdout).toBe("started\n");
    // As if the host had died between spawning it and the parent-death signal being set.
    const orphaned = boundToHost("sh", ["-c", "echo started"], deadPid());
    const outcome = spawnSync(orphaned.command, orphaned.args, { encoding: "utf8" });
    expect(outcome.status).toBe(125);
    expect(outcome.stdout).toBe("");
  });

  it("kills what a dead host left running when the next host starts, and nothing of a live one", async () => {
    const dead = deadPid();
    // Programs whose command lines name a runtime directory, as pasta's and bubblewrap's do.
    const orphan = spawn("sh", ["-c", "sleep 600", `/tmp/asb-${dead}-test/run/x`], { stdio: "ignore" });
    const live = spawn("sh", ["-c", "sleep 600", `/tmp/asb-${process.ppid}-test/run/x`], { stdio: "ignore" });
    const exited = (child: typeof orphan) => new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    const orphanExit = exited(orphan);
    try {
      await expect.poll(() => processes().some((info) => info.pid === orphan.pid && info.commandLine.includes("asb-"))).toBe(true);
      expect(killDeadHostProcesses("/tmp", "asb-")).toBeGreaterThanOrEqual(1);
      expect(await orphanExit).toBe("SIGKILL");
      expect(live.exitCode).toBeNull();
      expect(live.signalCode).toBeNull();
    } finally {
      orphan.kill("SIGKILL");
      live.kill("SIGKILL");
    }
  });
});
