/**
 * Reference mode of the local container host: Cloudflare's own container server runs in each
 * sandbox's namespace (behind the agent's relay) with the same isolation, network and limits as
 * the agent, and streams pass through unbuffered. Without the server's bundle the mode refuses
 * to start and says what to set. The bundle lives outside this repository (shared/reference);
 * where it is missing only the refusal is tested.
 */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { BUN_VERSION, containerServerSetting, DEFAULT_REFERENCE_SERVER } from "../../container/local/containerServer";
import { HostStartError, type RunningHost, startHost } from "../../container/local/host";

const token = randomBytes(16).toString("hex");
const haveReferenceServer = existsSync(DEFAULT_REFERENCE_SERVER);
const ExecuteResult = z.object({ success: z.boolean(), exitCode: z.number(), stdout: z.string(), stderr: z.string() });

/** Host processes whose command line contains `text`, with their host uid and pid. */
function processesMatching(text: string): { pid: number; uid: number; args: string }[] {
  // Every sandbox's bubblewrap and pasta print kilobytes of arguments: more than the default 1 MiB buffer on a busy machine.
  return execSync("ps -eo pid=,uid=,args=", { maxBuffer: 256 * 1024 ** 2 })
    .toString()
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null && (match[3] ?? "").includes(text))
    .map((match) => ({ pid: Number(match[1]), uid: Number(match[2]), args: match[3] ?? "" }));
}

describe("choosing the container server", () => {
  it("runs our agent unless SANDBOX_CONTAINER=reference, and refuses anything else", () => {
    expect(containerServerSetting({})).toEqual({ kind: "agent" });
    expect(containerServerSetting({ SANDBOX_CONTAINER: "agent" })).toEqual({ kind: "agent" });
    expect(containerServerSetting({ SANDBOX_CONTAINER: "reference" })).toEqual({ kind: "reference", serverFile: DEFAULT_REFERENCE_SERVER });
    expect(containerServerSetting({ SANDBOX_CONTAINER: "reference", SANDBOX_REFERENCE_SERVER: "/opt/server.js" })).toEqual({
      kind: "reference",
      serverFile: "/opt/server.js",
    });
    expect(() => containerServerSetting({ SANDBOX_CONTAINER: "docker" })).toThrow(/"agent" \(the default\) or "reference"/);
  });

  it("pins the same Bun in package.json as the host runs", () => {
    const manifest = z
      .object({ devDependencies: z.record(z.string(), z.string()) })
      .parse(JSON.parse(readFileSync("package.json", "utf8")));
    expect(manifest.devDependencies.bun).toBe(BUN_VERSION);
  });

  it("refuses to start without the server's bundle, saying why and what to set", async () => {
    const root = await mkdtemp(join(tmpdir(), "reference-missing-"));
    try {
      const starting = startHost({
        root,
        token,
        port: 0,
        containerServer: { kind: "reference", serverFile: join(root, "absent.js") },
        log: () => {},
      });
      await expect(starting).rejects.toThrow(HostStartError);
      await expect(starting).rejects.toThrow(/absent\.js does not exist[\s\S]*SANDBOX_REFERENCE_SERVER[\s\S]*SANDBOX_CONTAINER/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveReferenceServer)("local container host with Cloudflare's container server", () => {
  let host: RunningHost;
  let root: string;
  const call = (method: string, path: string, body?: unknown, init: RequestInit = {}) =>
    fetch(`${host.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
  const execute = async (key: string, command: string) => {
    expect((await call("POST", `/v1/containers/${key}/start`, {})).status).toBe(200);
    const response = await call("POST", `/v1/containers/${key}/ports/3000/api/execute`, { command, sessionId: "test" });
    expect(response.status).toBe(200);
    return ExecuteResult.parse(await response.json());
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "reference-host-"));
    host = await startHost({
      root,
      token,
      port: 0,
      containerServer: { kind: "reference", serverFile: DEFAULT_REFERENCE_SERVER },
      resourceLimits: { memoryBytes: 512 * 1024 ** 2, maxProcesses: 256 },
      log: () => {},
    });
  });
  afterAll(async () => {
    await host?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("answers the SDK's routes from Cloudflare's server, as root in /workspace with a writable /tmp", async () => {
    const ping = await call("GET", "/v1/containers/ref-a/ports/3000/api/ping");
    expect(ping.status).toBe(502); // not started yet
    const result = await execute("ref-a", "id -u; pwd; echo t > /tmp/t && cat /tmp/t; echo $SANDBOX_VERSION");
    expect(result.stdout.split("\n")).toEqual(["0", "/workspace", "t", expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
    // Its own answer to `/`, not the agent's.
    expect(await (await call("GET", "/v1/containers/ref-a/ports/3000/")).text()).toContain("Bun server");
  });

  it("runs the server under the pinned Bun, bound read-only, as the sandbox's own host uid, in its cgroups", async () => {
    const result = await execute(
      "ref-b",
      "/run/sandbox-agent/bun --version; echo x > /run/sandbox-agent/bun 2>/dev/null || echo read-only",
    );
    expect(result.stdout).toBe(`${BUN_VERSION}\nread-only`);
    const [server] = processesMatching("/run/sandbox-agent/bun /run/sandbox-agent/sandbox-container.js").filter(
      (p) => !p.args.includes("--relay"),
    );
    expect(server?.uid).toBeGreaterThanOrEqual(200_000);
    const cgroups = readFileSync(`/proc/${server?.pid}/cgroup`, "utf8");
    expect(cgroups).toMatch(/artifact-sandbox-\d+-/);
  });

  it("gives it the sandbox's network: outbound through pasta, nothing of the host", async () => {
    const result = await execute("ref-c", "ip -4 route get 1.1.1.1 2>&1; ip -4 route show; grep nameserver /etc/resolv.conf");
    expect(result.stdout).toContain("via 10.0.2.2");
    // The same blocks as every sandbox's (network.ts): private ranges and the host's loopback.
    expect(result.stdout).toContain("prohibit 10.0.0.0/8");
    expect(result.stdout).toContain("prohibit 127.0.0.0/8");
    expect(result.stdout).toContain("nameserver 10.0.2.3");
  });

  it("streams each output line as the command writes it, and serves on after a client goes away mid-stream", async () => {
    expect((await call("POST", "/v1/containers/ref-d/start", {})).status).toBe(200);
    const client = new AbortController();
    const started = performance.now();
    const response = await call(
      "POST",
      "/v1/containers/ref-d/ports/3000/api/execute/stream",
      { command: "for i in 1 2 3 4; do echo line$i; sleep 0.4; done; sleep 30", sessionId: "stream" },
      { signal: client.signal },
    );
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no stream");
    const arrivals = new Map<string, number>();
    let seen = "";
    while (arrivals.size < 4) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`stream ended early: ${seen}`);
      seen += chunk.value;
      for (const line of ["line1", "line2", "line3", "line4"])
        if (seen.includes(line) && !arrivals.has(line)) arrivals.set(line, performance.now() - started);
    }
    // Written 400 ms apart: the first arrived long before the last was written.
    expect((arrivals.get("line4") ?? 0) - (arrivals.get("line1") ?? 0)).toBeGreaterThan(900);
    client.abort();
    // The server saw its client go: it still answers the next request.
    expect((await execute("ref-d", "echo next")).stdout).toBe("next");
  });

  it("ends the container when the server dies, and starts a fresh one next time", async () => {
    expect((await execute("ref-e", "echo here")).stdout).toBe("here");
    const monitor = call("GET", "/v1/containers/ref-e/monitor").then((response) => response.json());
    await call("POST", "/v1/containers/ref-e/ports/3000/api/execute", { command: "kill -9 -1", sessionId: "test" }).catch(() => undefined);
    expect(await monitor).toEqual({ exitCode: expect.any(Number) });
    expect(await (await call("GET", "/v1/containers/ref-e")).json()).toEqual({ running: false });
    expect((await execute("ref-e", "echo back")).stdout).toBe("back");
  });
});
