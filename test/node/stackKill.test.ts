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

  it("leaves no pasta, bubblewrap, agent or Bun of it running", { timeout: 180_000 }, async () => {
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

  it("gives the command SIGINT and SIGQUIT at their defaults, though the guard runs it in the background", () => {
    const bound = boundToHost("sh", ["-c", "grep SigIgn /proc/self/status"]);
    expect(spawnSync(bound.command, bound.args, { encoding: "utf8" }).stdout).toBe("SigIgn:\t0000000000000000\n");
  });

  it("ends with the host what the command forked, though that has no parent-death signal", { timeout: 30_000 }, async () => {
    // A stand-in host: it spawns the command line it reads on stdin as the container host does
    // (detached, its own process group), passes on its output, and then waits to be killed.
    const hostScript = [
      'const { spawn } = require("node:child_process");',
      'process.stdin.once("data", (line) => {',
      "  const [command, ...args] = JSON.parse(String(line));",
      '  spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], detached: true }).stdout.pipe(process.stdout);',
      "});",
    ].join("\n");
    const host = spawn(process.execPath, ["-e", hostScript], { stdio: ["pipe", "pipe", "inherit"] });
    const hostExited = new Promise((resolve) => host.once("exit", resolve));
    let forkedPid: number | undefined;
    try {
      if (host.pid === undefined) throw new Error("the stand-in host has no pid");
      // As pasta forks the sandbox's first process, which waits for pasta's go-ahead: no parent-death signal.
      const bound = boundToHost("sh", ["-c", "sleep 600 & echo $!; wait"], host.pid);
      host.stdin.write(`${JSON.stringify([bound.command, ...bound.args])}\n`);
      forkedPid = await new Promise<number>((resolve) => host.stdout.once("data", (chunk) => resolve(Number(String(chunk).trim()))));
      const forked = () => processes().filter((info) => info.pid === forkedPid && info.commandLine === "sleep 600");
      expect(forked()).toHaveLength(1);

      host.kill("SIGKILL");
      await hostExited;
      await expect.poll(() => forked().length, { timeout: 5_000 }).toBe(0);
    } finally {
      host.kill("SIGKILL");
      // Should it have outlived the host, it is ended here and not left to the machine.
      if (forkedPid !== undefined && processes().some((info) => info.pid === forkedPid && info.commandLine === "sleep 600")) {
        process.kill(forkedPid, "SIGKILL");
      }
    }
  });

  it("kills what a dead host left running when the next host starts, and nothing of a live one", async () => {
    const dead = deadPid();
    // Programs whose command lines name a runtime directory, as pasta's and bubblewrap's do; one
    // process each (a shell would leave its sleep behind when killed).
    const waitForever = "setTimeout(() => {}, 600_000)";
    const orphan = spawn(process.execPath, ["-e", waitForever, `/tmp/asb-${dead}-test/run/x`], { stdio: "ignore" });
    const live = spawn(process.execPath, ["-e", waitForever, `/tmp/asb-${process.ppid}-test/run/x`], { stdio: "ignore" });
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
