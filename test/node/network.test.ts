/**
 * A sandbox's network through real bubblewrap and real pasta, composed the way the container
 * host composes them (cgroups aside): setpriv to an unprivileged uid, then the network wrapper,
 * then bubblewrap. Proves that "outbound" reaches the public registry and nothing of the host's,
 * that the blocks fail fast and cannot be undone, that "none" fails name lookups at once, and
 * that pasta never outlives its sandbox. Private and link-local destinations are only ever
 * connect()ed after `ip route get` has shown that the namespace refuses them locally, so no
 * packet leaves for them.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { FILE_PERMISSION_CAPABILITIES } from "../../container/local/isolation";
import {
  ensureNetworkSupport,
  hostIpv4Destinations,
  type NetworkPolicy,
  routeCommands,
  sandboxNetwork,
  writeNetworkFiles,
} from "../../container/local/network";

/** Below the container host's own uid range, so that this test never shares a uid with its sandboxes. */
const SANDBOX_UID = 199_998;
const REGISTRY = "https://registry.npmjs.org/";

let filesDir = "";
let loopbackServer: Server;
let loopbackV6Server: Server;
let wildcardServer: Server;

/** A test server's answer; the prober hangs up at once, which must not crash this process. */
function answerAndClose(socket: Socket, text: string): void {
  socket.on("error", () => {});
  socket.end(`${text}\n`);
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      resolve(address.port);
    });
  });
}

/** The full command line of a sandbox running `script` under `policy`, as the host would spawn it. */
function sandboxCommand(policy: NetworkPolicy, script: string): { command: string; args: string[] } {
  const network = sandboxNetwork(policy, filesDir);
  const bwrap = ["--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--die-with-parent", "--cap-drop", "ALL"];
  // The capabilities a sandbox's root keeps over its own files (isolation.ts): none of them reaches the network.
  for (const capability of FILE_PERMISSION_CAPABILITIES) bwrap.push("--cap-add", capability);
  bwrap.push("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", ...network.bubblewrapArgs);
  const inner = network.wrap("bwrap", [...bwrap, "/bin/sh", "-c", script]);
  const user = [`--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_UID}`, "--clear-groups", "--"];
  return { command: "setpriv", args: [...user, inner.command, ...inner.args] };
}

interface Finished {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a sandbox to completion without blocking this process (its test servers must keep answering). */
function runSandbox(policy: NetworkPolicy, script: string): Promise<Finished> {
  const { command, args } = sandboxCommand(policy, script);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (exitCode) => resolve({ exitCode, stdout, stderr: stderr.replace(/Failed to send \d+ bytes to syslog\n/g, "") }));
  });
}

/**
 * Node, inside the sandbox: for each target, asks the routing table first and connects only to
 * loopback or to a destination the namespace refused locally; prints one JSON line of outcomes.
 */
const PROBE = `
const { execFileSync } = require("node:child_process");
const net = require("node:net");
const targets = JSON.parse(process.argv[1]);
(async () => {
  const outcomes = {};
  for (const { host, port, loopback } of targets) {
    let refusedByRoute = false;
    try { execFileSync("ip", ["route", "get", host], { stdio: "pipe" }); } catch { refusedByRoute = true; }
    if (!refusedByRoute && !loopback) { outcomes[host] = { refusedByRoute, result: "not tried" }; continue; }
    const started = Date.now();
    const result = await new Promise((done) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => { socket.destroy(); done("timeout"); }, 3000);
      socket.on("connect", () => { clearTimeout(timer); socket.destroy(); done("connected"); });
      socket.on("error", (error) => { clearTimeout(timer); done(error.code); });
    });
    outcomes[host] = { refusedByRoute, result, ms: Date.now() - started };
  }
  console.log(JSON.stringify(outcomes));
})();
`;

const Outcome = z.object({ refusedByRoute: z.boolean(), result: z.string(), ms: z.number().optional() });
const Outcomes = z.record(z.string(), Outcome);

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function nodeInSandbox(code: string, argument = ""): string {
  return `${shellQuote(process.execPath)} -e ${shellQuote(code)} ${shellQuote(argument)}`;
}

/** Processes whose command line contains `marker` and that have not yet exited (zombies excluded). */
function livingProcessesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

function connectsFromHost(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Whether this host itself reaches the public registry (this machine's network may not). */
async function hostReachesRegistry(): Promise<boolean> {
  try {
    const response = await fetch(REGISTRY, { signal: AbortSignal.timeout(5_000) });
    return response.ok;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const reason = ensureNetworkSupport(SANDBOX_UID, (line) => console.error(line));
  if (reason !== undefined) throw new Error(reason);
  filesDir = await mkdtemp(join(tmpdir(), "sandbox-network-test-"));
  await writeNetworkFiles(filesDir);
  loopbackServer = createServer((socket) => answerAndClose(socket, "host loopback"));
  loopbackV6Server = createServer((socket) => answerAndClose(socket, "host loopback v6"));
  wildcardServer = createServer((socket) => answerAndClose(socket, "host address"));
});

afterAll(async () => {
  for (const server of [loopbackServer, loopbackV6Server, wildcardServer]) server?.close();
  if (filesDir) await rm(filesDir, { recursive: true, force: true });
});

describe("outbound", () => {
  it("reaches neither the host's loopback, its own addresses, link-local nor private ranges, and fails fast", async () => {
    const loopbackPort = await listen(loopbackServer, "127.0.0.1");
    const loopbackV6Port = await listen(loopbackV6Server, "::1");
    const wildcardPort = await listen(wildcardServer, "0.0.0.0");
    const hostAddresses = hostIpv4Destinations()
      .filter((destination) => destination.endsWith("/32"))
      .map((destination) => destination.slice(0, -3));
    // Positive control: the host's services do answer, from the host itself.
    expect(await connectsFromHost("127.0.0.1", loopbackPort)).toBe(true);
    expect(await connectsFromHost("::1", loopbackV6Port)).toBe(true);
    for (const host of hostAddresses) expect(await connectsFromHost(host, wildcardPort)).toBe(true);
    const targets = [
      { host: "127.0.0.1", port: loopbackPort, loopback: true },
      { host: "::1", port: loopbackV6Port, loopback: true },
      ...hostAddresses.map((host) => ({ host, port: wildcardPort, loopback: false })),
      ...["10.0.2.2", "10.0.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"].map((host) => ({
        host,
        port: 80,
        loopback: false,
      })),
      ...["fc00::1", "fd00::1", "fe80::1", "2606:4700::1111"].map((host) => ({ host, port: 80, loopback: false })),
    ];
    const run = await runSandbox("outbound", nodeInSandbox(PROBE, JSON.stringify(targets)));
    expect(run.stderr).toBe("");
    const outcomes = Outcomes.parse(JSON.parse(run.stdout));
    // The namespace's own loopback answers, not the host's: nothing listens there.
    expect(outcomes["127.0.0.1"]).toMatchObject({ refusedByRoute: false, result: "ECONNREFUSED" });
    expect(outcomes["::1"]).toMatchObject({ refusedByRoute: false, result: "ECONNREFUSED" });
    for (const target of targets.filter((each) => !each.loopback)) {
      // A link-local address without an interface is refused before routing even starts.
      const refusal = target.host.startsWith("fe80:") ? "EINVAL" : "EACCES";
      expect(outcomes[target.host], target.host).toMatchObject({ refusedByRoute: true, result: refusal });
      expect(outcomes[target.host]?.ms, target.host).toBeLessThan(100);
    }
  });

  it("resolves names and fetches the public registry over HTTPS", async (context) => {
    if (!(await hostReachesRegistry())) {
      context.skip(`${REGISTRY} is not reachable from this host itself, so the sandbox cannot be expected to reach it`);
    }
    const fetchRegistry = `fetch(${JSON.stringify(REGISTRY)}).then((r) => console.log("status", r.status), (e) => console.log("failed", e.cause?.code ?? e.message))`;
    const run = await runSandbox("outbound", `getent hosts registry.npmjs.org && ${nodeInSandbox(fetchRegistry)}`);
    expect(run.stdout).toMatch(/registry\.npmjs\.org/);
    expect(run.stdout).toContain("status 200");
  });

  it("leaves the job no way to lift the blocks", async () => {
    const script = [
      "grep CapEff /proc/self/status",
      "ip route del prohibit 10.0.0.0/8 2>&1 || echo 'delete refused'",
      // A user namespace of its own gives capabilities over nothing that pasta's namespace owns.
      "unshare --user --map-root-user ip route del prohibit 10.0.0.0/8 2>&1 || echo 'nested delete refused'",
      "ip route get 10.1.2.3 >/dev/null 2>&1 || echo 'still blocked'",
      "echo addresses: $(ip -o address show | awk '{print $2, $4}')",
    ].join("; ");
    const run = await runSandbox("outbound", script);
    // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER (bits 1 to 3), nothing else.
    expect(run.stdout).toContain("CapEff:\t000000000000000e");
    expect(run.stdout).toContain("delete refused");
    expect(run.stdout).toContain("nested delete refused");
    expect(run.stdout).toContain("still blocked");
    // No IPv6 on the link at all (not even link-local): the only IPv6 address is the namespace's own ::1.
    expect(run.stdout).toContain("addresses: lo 127.0.0.1/8 lo ::1/128 eth0 10.0.2.100/32\n");
  });
});

describe("route setup", () => {
  it("names each blocked destination once, even when the host sits inside a blocked range", () => {
    const commands = routeCommands(["10.0.0.0/8", "10.1.2.3/32"]);
    const prohibits = commands.filter((command) => command.startsWith("route add prohibit "));
    expect(new Set(prohibits).size).toBe(prohibits.length);
    expect(prohibits).toContain("route add prohibit 10.1.2.3/32");
  });
});

describe("none", () => {
  it("has loopback only, and a name lookup fails at once with a stated reason", async () => {
    const fetchRegistry = `const t = Date.now(); fetch(${JSON.stringify(REGISTRY)}).then(() => console.log("fetched"), (e) => console.log("fetch failed", e.cause?.code, Date.now() - t))`;
    const script = [
      "ip -o link | cut -d: -f2",
      's=$(date +%s%N); getent hosts registry.npmjs.org; echo "getent exit $? in $((($(date +%s%N) - s) / 1000000)) ms"',
      nodeInSandbox(fetchRegistry),
      "head -1 /etc/resolv.conf",
    ].join("; ");
    const run = await runSandbox("none", script);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]?.trim()).toBe("lo");
    const getent = run.stdout.match(/getent exit (\d+) in (\d+) ms/);
    expect(getent?.[1]).toBe("2");
    expect(Number(getent?.[2])).toBeLessThan(1_000);
    const fetched = run.stdout.match(/fetch failed (\S+) (\d+)/);
    expect(fetched?.[1]).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/);
    expect(Number(fetched?.[2])).toBeLessThan(1_000);
    expect(run.stdout).toContain("This sandbox has no network");
  });
});

describe("pasta's lifetime", () => {
  it("ends with the sandbox when the host kills the sandbox's process group", async () => {
    const marker = `${1000 + randomBytes(2).readUInt16BE(0)}.${randomBytes(3).readUIntBE(0, 3)}`;
    const { command, args } = sandboxCommand("outbound", `sleep ${marker}`);
    const child = spawn(command, args, { stdio: "ignore", detached: true });
    expect(await waitFor(() => livingProcessesWith(`sleep\0${marker}`).length > 0, 5_000)).toBe(true);
    expect(livingProcessesWith(marker).length).toBeGreaterThanOrEqual(3); // pasta, bwrap (two), sleep
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    expect(await waitFor(() => livingProcessesWith(marker).length === 0, 3_000)).toBe(true);
  });

  it("ends with the sandbox when the host process itself dies", async () => {
    const marker = `${1000 + randomBytes(2).readUInt16BE(0)}.${randomBytes(3).readUIntBE(0, 3)}`;
    const { command, args } = sandboxCommand("outbound", `sleep ${marker}`);
    // A stand-in for the host process: its child is the sandbox; then it is killed outright.
    const line = [command, ...args].map(shellQuote).join(" ");
    const host = spawn("/bin/sh", ["-c", `${line} & wait`], { stdio: "ignore" });
    expect(await waitFor(() => livingProcessesWith(`sleep\0${marker}`).length > 0, 5_000)).toBe(true);
    host.kill("SIGKILL");
    expect(await waitFor(() => livingProcessesWith(marker).length === 0, 3_000)).toBe(true);
  });
});
