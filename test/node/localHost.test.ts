/**
 * The local container host through its real Front API and real bubblewrap: the container
 * lifecycle, the streaming proxy to the agent, and what a job inside a container can and cannot
 * reach. Jobs are driven the way the SDK drives them, with plain fetch through the proxy
 * (`.../ports/3000/api/execute`).
 */
import { execFileSync, execSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningHost, startHost } from "../../container/local/host";
import { ContainerExit, ContainerState, HostError } from "../../schemas/sandboxHost";

const token = randomBytes(16).toString("hex");

/**
 * A stand-in for the agent with endpoints that exercise the proxy alone: a large body, timed
 * server-sent events, an echo of what arrived, and a request that never ends and records when
 * its connection closes. It runs inside a real container like the agent.
 */
const PROXY_PROBE_AGENT = `
import { createServer } from "node:http";
import { rmSync, writeFileSync } from "node:fs";
const socket = process.argv[process.argv.indexOf("--socket") + 1];
const server = createServer((req, res) => {
  const url = new URL(req.url, "http://agent");
  if (url.pathname === "/big") {
    let left = Number(url.searchParams.get("bytes"));
    const chunk = Buffer.alloc(64 * 1024, 120);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(left) });
    const pump = () => {
      while (left > 0) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= part.length;
        if (!res.write(part)) return void res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  if (url.pathname === "/events") {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let sent = 0;
    const timer = setInterval(() => {
      res.write("data: " + sent++ + "\\n\\n");
      if (sent === 5) { clearInterval(timer); res.end(); }
    }, 200);
    return;
  }
  if (url.pathname === "/hang") {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write("data: waiting\\n\\n");
    res.on("close", () => writeFileSync("/workspace/hang-closed", "closed"));
    return;
  }
  let bytes = 0;
  req.on("data", (part) => (bytes += part.length));
  req.on("end", () => {
    res.writeHead(201, { "content-type": "application/json", "x-agent": "probe" });
    res.end(JSON.stringify({ method: req.method, url: req.url, bytes, authorization: req.headers.authorization ?? null, custom: req.headers["x-custom"] ?? null }));
  });
});
process.on("SIGUSR2", () => writeFileSync("/workspace/usr2-handled", "handled"));
try { rmSync(socket); } catch {}
server.listen(socket, () => console.log(JSON.stringify({ ready: true })));
`;

const ExecuteResult = z.object({ success: z.boolean(), exitCode: z.number(), stdout: z.string(), stderr: z.string() });
const ProbeEcho = z.object({
  method: z.string(),
  url: z.string(),
  bytes: z.number(),
  authorization: z.string().nullable(),
  custom: z.string().nullable(),
});

/** Host processes whose command line is exactly `commandLine`, with their host uid. */
function processesRunning(commandLine: string): { uid: number; args: string }[] {
  // A busy machine lists many processes: more than execSync's default 1 MiB buffer.
  return execSync("ps -eo uid=,args=", { maxBuffer: 64 * 1024 * 1024 })
    .toString()
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null && match[2]?.trim() === commandLine)
    .map((match) => ({ uid: Number(match[1]), args: match[2] ?? "" }));
}

/** One request with node:http (keep-alive), resolving with its round trip in milliseconds. */
function timedRequest(options: RequestOptions, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = httpRequest(options, (response) => {
      response.resume();
      response.on("end", () => resolve(performance.now() - started));
    });
    request.on("error", reject);
    request.end(body);
  });
}

/**
 * Median round trips of the same request through the front and straight to the agent's socket
 * (found under the in-process host's runtime directory), interleaved so that load on the machine
 * weighs on both alike.
 */
async function compareRoundTrips(host: RunningHost, key: string, method: string, path: string, body?: string, rounds = 100) {
  const runtimeDir = readdirSync("/tmp").find((name) => name.startsWith(`asb-${process.pid}-`) && existsSync(`/tmp/${name}/run/${key}`));
  const socketPath = `/tmp/${runtimeDir}/run/${key}/agent.sock`;
  const url = new URL(host.url);
  const headers = { "content-type": "application/json" };
  const frontOptions: RequestOptions = {
    host: url.hostname,
    port: url.port,
    method,
    path: `/v1/containers/${key}/ports/3000${path}`,
    headers: { ...headers, authorization: `Bearer ${token}` },
    agent: new HttpAgent({ keepAlive: true }),
  };
  const directOptions: RequestOptions = { socketPath, method, path, headers, agent: new HttpAgent({ keepAlive: true }) };
  const front: number[] = [];
  const direct: number[] = [];
  // The first tenth warms up connections and code paths.
  for (let i = 0; i < rounds * 1.1; i++) {
    const viaFront = await timedRequest(frontOptions, body);
    const straight = await timedRequest(directOptions, body);
    if (i < rounds * 0.1) continue;
    front.push(viaFront);
    direct.push(straight);
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.POSITIVE_INFINITY;
  return { front: median(front), direct: median(direct) };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueSleep = () => `sleep ${31_000 + Math.floor(Math.random() * 9_000)}`;

/** A client of one running host's Front API. */
function frontClient(getHost: () => RunningHost) {
  const call = (method: string, path: string, body?: unknown, init: RequestInit = {}) =>
    fetch(`${getHost().url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
  const start = async (key: string) => {
    const response = await call("POST", `/v1/containers/${key}/start`, {});
    expect(response.status).toBe(200);
    return ContainerState.parse(await response.json());
  };
  const agent = (key: string, path: string, body?: unknown, init: RequestInit = {}) =>
    call("POST", `/v1/containers/${key}/ports/3000${path}`, body, init);
  /** Runs one command the way the SDK's `exec` does, starting the container first. */
  const execute = async (key: string, command: string) => {
    await start(key);
    const response = await agent(key, "/api/execute", { command, sessionId: "test" });
    expect(response.status).toBe(200);
    return ExecuteResult.parse(await response.json());
  };
  return { call, start, agent, execute };
}

describe("local container host: lifecycle and proxy", () => {
  let host: RunningHost;
  let root: string;
  let probeFile: string;
  const { call, start, agent } = frontClient(() => host);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "front-test-"));
    probeFile = join(root, "..", `${root.split("/").pop()}-probe-agent.mjs`);
    await writeFile(probeFile, PROXY_PROBE_AGENT);
    host = await startHost({ root, token, port: 0, agentFile: probeFile });
  });
  afterAll(async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
    await rm(probeFile, { force: true });
  });

  it("refuses requests without the right bearer token", async () => {
    for (const authorization of [undefined, "Bearer wrong-token-wrong-token", "Basic abc"]) {
      const response = await fetch(`${host.url}/v1/containers/a`, { headers: authorization ? { authorization } : {} });
      expect(response.status).toBe(401);
      expect(HostError.parse(await response.json()).error.code).toBe("UNAUTHORIZED");
    }
  });

  it("refuses invalid container keys and bodies", async () => {
    for (const key of ["Upper", "-lead", "..%2Fetc", "a".repeat(64)]) {
      const response = await call("POST", `/v1/containers/${key}/start`, {});
      expect(response.status).toBe(400);
      expect(HostError.parse(await response.json()).error.code).toBe("BAD_REQUEST");
    }
    const badSignal = await call("POST", "/v1/containers/a/signal", { signal: "KILL" });
    expect(badSignal.status).toBe(400);
  });

  it("starts a container once, reports it, and monitors it until a signal ends it", async () => {
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/life")).json())).toEqual({ running: false });
    const [first, second] = await Promise.all([start("life"), start("life")]);
    expect(first).toEqual({ running: true });
    expect(second).toEqual({ running: true });

    let exited = false;
    const monitor = call("GET", "/v1/containers/life/monitor").then(async (response) => {
      exited = true;
      return ContainerExit.parse(await response.json());
    });
    await pause(200);
    expect(exited).toBe(false);
    expect((await call("POST", "/v1/containers/life/signal", { signal: 15 })).status).toBe(204);
    expect((await monitor).exitCode).not.toBe(0);
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/life")).json())).toEqual({ running: false });
    // Not running: monitor answers at once with the last exit code.
    expect(await (await call("GET", "/v1/containers/life/monitor")).json()).toEqual(await monitor);

    // The next start makes a new instance; DELETE ends it and is idempotent.
    expect(await start("life")).toEqual({ running: true });
    expect((await call("DELETE", "/v1/containers/life")).status).toBe(204);
    expect((await call("DELETE", "/v1/containers/life")).status).toBe(204);
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/life")).json())).toEqual({ running: false });
  });

  it("passes other signals to the container's processes", async () => {
    await start("interrupted");
    const monitor = call("GET", "/v1/containers/interrupted/monitor").then(async (response) => ContainerExit.parse(await response.json()));
    expect((await call("POST", "/v1/containers/interrupted/signal", { signal: 2 })).status).toBe(204);
    // The probe agent has no SIGINT handler, so it dies of it; the container reports 128 + 2.
    expect(await monitor).toEqual({ exitCode: 130 });
  });

  it("passes a signal that the container's processes handle to them alone: the container runs on", async () => {
    await start("handles-usr2");
    expect((await call("POST", "/v1/containers/handles-usr2/signal", { signal: 12 })).status).toBe(204);
    await expect.poll(() => existsSync(join(root, "handles-usr2", "usr2-handled")), { timeout: 5_000 }).toBe(true);
    // Nothing between the host and the sandbox (pasta) got it: the container still answers.
    expect((await agent("handles-usr2", "/echo")).status).toBe(201);
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/handles-usr2")).json())).toEqual({ running: true });
  });

  it("answers 502 NOT_LISTENING for a stopped container or another port", async () => {
    const stopped = await agent("never-started", "/echo");
    expect(stopped.status).toBe(502);
    expect(HostError.parse(await stopped.json()).error.code).toBe("NOT_LISTENING");
    await start("ports");
    const otherPort = await call("GET", "/v1/containers/ports/ports/8080/echo");
    expect(otherPort.status).toBe(502);
    expect(HostError.parse(await otherPort.json()).error.code).toBe("NOT_LISTENING");
  });

  it("forwards method, path, query, headers and body, but never the host's token", async () => {
    await start("echo");
    const response = await call("PUT", "/v1/containers/echo/ports/3000/some/path%20x?a=1&b=two", undefined, {
      headers: { authorization: `Bearer ${token}`, "x-custom": "kept" },
      body: "hello agent",
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("x-agent")).toBe("probe");
    expect(ProbeEcho.parse(await response.json())).toEqual({
      method: "PUT",
      url: "/some/path%20x?a=1&b=two",
      bytes: 11,
      authorization: null,
      custom: "kept",
    });
    const rootPath = ProbeEcho.parse(await (await call("GET", "/v1/containers/echo/ports/3000")).json());
    expect(rootPath.url).toBe("/");
  });

  it("streams a 1 GiB answer in flat memory", async () => {
    await start("big");
    const bytes = 1024 ** 3;
    const response = await call("GET", `/v1/containers/big/ports/3000/big?bytes=${bytes}`);
    const reader = response.body?.getReader();
    if (!reader) throw new Error("no body");
    const rssBefore = process.memoryUsage().rss;
    let received = 0;
    let peakGrowth = 0;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      received += chunk.value.byteLength;
      if (received % (64 * 1024 ** 2) < chunk.value.byteLength) peakGrowth = Math.max(peakGrowth, process.memoryUsage().rss - rssBefore);
    }
    expect(received).toBe(bytes);
    expect(peakGrowth).toBeLessThan(128 * 1024 ** 2);
  }, 60_000);

  it("streams a 512 MiB upload in flat memory", async () => {
    await start("upload");
    const bytes = 512 * 1024 ** 2;
    const chunk = Buffer.alloc(1024 ** 2, 121);
    let peakGrowth = 0;
    const rssBefore = process.memoryUsage().rss;
    async function* upload() {
      for (let sent = chunk.length; sent <= bytes; sent += chunk.length) {
        if (sent % (64 * 1024 ** 2) === 0) peakGrowth = Math.max(peakGrowth, process.memoryUsage().rss - rssBefore);
        yield chunk;
      }
    }
    const answer = new Promise<string>((resolve, reject) => {
      const url = new URL(`${host.url}/v1/containers/upload/ports/3000/upload`);
      const request = httpRequest(url, { method: "POST", headers: { authorization: `Bearer ${token}` } }, (response) => {
        let text = "";
        response.setEncoding("utf8").on("data", (part: string) => (text += part));
        response.on("end", () => resolve(text));
      });
      request.on("error", reject);
      pipeline(Readable.from(upload()), request).catch(reject);
    });
    expect(ProbeEcho.parse(JSON.parse(await answer)).bytes).toBe(bytes);
    expect(peakGrowth).toBeLessThan(128 * 1024 ** 2);
  }, 60_000);

  it("passes each server-sent event on as the agent writes it", async () => {
    await start("events");
    const started = performance.now();
    const response = await call("GET", "/v1/containers/events/ports/3000/events");
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no body");
    const arrivals: number[] = [];
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      for (const _event of chunk.value.split("\n\n").filter(Boolean)) arrivals.push(performance.now() - started);
    }
    expect(arrivals).toHaveLength(5);
    // Written 200 ms apart: the first must arrive long before the last was written.
    expect((arrivals[4] ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThan(600);
  });

  it("closes the agent's request when the client goes away", async () => {
    await start("hang");
    const client = new AbortController();
    const response = await call("GET", "/v1/containers/hang/ports/3000/hang", undefined, { signal: client.signal });
    const reader = response.body?.getReader();
    await reader?.read();
    client.abort();
    await expect.poll(() => readFile(join(root, "hang", "hang-closed"), "utf8").catch(() => ""), { timeout: 3_000 }).toBe("closed");
  });

  // What the proxy costs is a figure of `npm run bench` (ratios in one run), not a timed assertion
  // that a busy machine would fail: these check that both paths answer, and print the medians.
  it("answers a request through the front as asking the agent's socket directly does", async () => {
    await start("latency");
    const { front, direct } = await compareRoundTrips(host, "latency", "GET", "/ping");
    console.log(`proxy: ${front.toFixed(2)} ms through the front, ${direct.toFixed(2)} ms direct (medians)`);
    expect(Number.isFinite(front) && Number.isFinite(direct)).toBe(true);
  });

  it("ends an idle container, but not one with a request still open", async () => {
    const idleRoot = await mkdtemp(join(tmpdir(), "front-idle-"));
    const idleHost = await startHost({ root: idleRoot, token, port: 0, agentFile: probeFile, idleMs: 600 });
    const idle = frontClient(() => idleHost);
    try {
      await idle.start("busy");
      const client = new AbortController();
      const open = await idle.call("GET", "/v1/containers/busy/ports/3000/hang", undefined, { signal: client.signal });
      await open.body?.getReader().read();
      await idle.start("idle");
      await pause(2_000);
      const running = async (key: string) => ContainerState.parse(await (await idle.call("GET", `/v1/containers/${key}`)).json()).running;
      expect(await running("idle")).toBe(false);
      expect(await running("busy")).toBe(true);
      client.abort();
      await expect.poll(() => running("busy"), { timeout: 3_000 }).toBe(false);
    } finally {
      await idleHost.close();
      await rm(idleRoot, { recursive: true, force: true });
    }
  });

  it("never boots a container destroyed while its start waits for a turn to boot", async () => {
    // More starts at once than the host boots at once: the last ones wait their turn.
    const keys = Array.from({ length: availableParallelism() + 3 }, (_, index) => `queued-boot-${index}`);
    const starts = keys.map(async (key) => {
      const response = await call("POST", `/v1/containers/${key}/start`, {});
      return { status: response.status, body: await response.text() };
    });
    await pause(100);
    const destroyed = await Promise.all(keys.map((key) => call("DELETE", `/v1/containers/${key}`)));
    expect(destroyed.map((response) => response.status).every((status) => status < 300)).toBe(true);
    const answers = await Promise.all(starts);
    const neverBooted = keys.filter((_, index) => answers[index]?.body.includes("destroyed before its turn to boot came"));
    expect(neverBooted.length).toBeGreaterThan(0);
    expect(neverBooted.every((key) => answers[keys.indexOf(key)]?.status === 503)).toBe(true);
    for (const key of neverBooted) {
      expect(ContainerState.parse(await (await call("GET", `/v1/containers/${key}`)).json()).running).toBe(false);
    }
    // A start after the destroy is a start of its own, not the cancelled one.
    const [again] = neverBooted;
    expect((await call("POST", `/v1/containers/${again}/start`, {})).status).toBe(200);
    await Promise.all(keys.map((key) => call("DELETE", `/v1/containers/${key}`)));
  });

  it("answers 503 START_FAILED when the agent never becomes ready", async () => {
    const brokenRoot = await mkdtemp(join(tmpdir(), "front-broken-"));
    const brokenAgent = join(tmpdir(), `broken-agent-${randomBytes(4).toString("hex")}.mjs`);
    await writeFile(brokenAgent, 'console.error("agent: cannot start"); process.exit(3);\n');
    const broken = await startHost({ root: brokenRoot, token, port: 0, agentFile: brokenAgent, log: () => {} });
    try {
      const response = await fetch(`${broken.url}/v1/containers/x/start`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(503);
      const { error } = HostError.parse(await response.json());
      expect(error.code).toBe("START_FAILED");
      expect(error.message).toContain("cannot start");
    } finally {
      await broken.close();
      await rm(brokenRoot, { recursive: true, force: true });
      await rm(brokenAgent, { force: true });
    }
  });
});

describe("local container host: what a job can reach (real agent)", () => {
  let host: RunningHost;
  let root: string;
  const { call, start, agent, execute } = frontClient(() => host);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "host-test-"));
    host = await startHost({ root, token, port: 0, resourceLimits: { memoryBytes: 256 * 1024 ** 2, maxProcesses: 128 } });
  });
  afterAll(async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Opens `/api/execute/stream` for `command` and reads until its output contains `until`. */
  async function streamUntil(key: string, command: string, until: string, signal?: AbortSignal) {
    await start(key);
    const response = await agent(key, "/api/execute/stream", { command, sessionId: "test" }, { signal });
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no stream");
    let seen = "";
    while (!seen.includes(until)) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`stream ended before ${until}: ${seen}`);
      seen += chunk.value;
    }
    return reader;
  }

  it("answers an exec round trip (front, agent, `true`) as the agent's socket does", async () => {
    await start("quick");
    const body = JSON.stringify({ command: "true", sessionId: "test" });
    const { front, direct } = await compareRoundTrips(host, "quick", "POST", "/api/execute", body, 40);
    console.log(`exec true: ${front.toFixed(2)} ms through the front, ${direct.toFixed(2)} ms direct (medians)`);
    expect(Number.isFinite(front) && Number.isFinite(direct)).toBe(true);
  });

  it("gives the container's processes the env of its start request, and no host env", async () => {
    process.env.HOST_ONLY_SECRET = "leak";
    try {
      const started = await call("POST", "/v1/containers/env/start", { env: { GREETING: "hello from start" } });
      expect(started.status).toBe(200);
      const result = await execute("env", 'echo "$GREETING|$HOST_ONLY_SECRET|$HOME"');
      expect(result.stdout).toBe("hello from start||/workspace");
    } finally {
      delete process.env.HOST_ONLY_SECRET;
    }
  });

  it("gives a container the outbound network unless its start turns the internet off", async () => {
    // Only routes are looked up: no packet is sent (the network policy itself is network.test.ts's).
    const probe = "ip -4 route get 1.1.1.1 2>&1; grep nameserver /etc/resolv.conf";
    const outbound = await execute("net-on", probe);
    expect(outbound.stdout).toContain("via 10.0.2.2");
    expect((await call("POST", "/v1/containers/net-off/start", { enableInternet: false })).status).toBe(200);
    const none = await execute("net-off", probe);
    expect(none.stdout).toMatch(/unreachable/i);
    expect(none.stdout).toContain("nameserver 127.0.0.1");
  });

  it("gives no container any network when the host's policy is none, whatever its start asks", async () => {
    const offlineRoot = await mkdtemp(join(tmpdir(), "host-offline-"));
    const offline = await startHost({ root: offlineRoot, token, port: 0, network: "none" });
    try {
      const client = frontClient(() => offline);
      expect((await client.call("POST", "/v1/containers/asks/start", { enableInternet: true })).status).toBe(200);
      const result = await client.execute("asks", "ip -4 route get 1.1.1.1 2>&1; grep nameserver /etc/resolv.conf");
      expect(result.stdout).toMatch(/unreachable/i);
      expect(result.stdout).toContain("nameserver 127.0.0.1");
    } finally {
      await offline.close();
      await rm(offlineRoot, { recursive: true, force: true });
    }
  });

  it("runs each sandbox as its own unprivileged host uid, root only inside its namespace", async () => {
    const uids: number[] = [];
    for (const key of ["uid-a", "uid-b"]) {
      const marker = uniqueSleep();
      const reader = await streamUntil(key, `${marker} & echo started; wait`, "started");
      // The forked shell execs into sleep a moment after "started" may be printed.
      await expect.poll(() => processesRunning(marker), { timeout: 3_000 }).toHaveLength(1);
      const running = processesRunning(marker);
      uids.push(running[0]?.uid ?? 0);
      await reader.cancel();
      expect((await call("DELETE", `/v1/containers/${key}`)).status).toBe(204);
      expect(processesRunning(marker)).toEqual([]);
    }
    expect(uids[0]).toBeGreaterThanOrEqual(200_000);
    expect(uids[1]).toBeGreaterThanOrEqual(200_000);
    expect(uids[0]).not.toBe(uids[1]);
    expect((await execute("uid-a", "id -u")).stdout).toBe("0");
  });

  it("cannot read a root-only file of the host that its namespace shows", async () => {
    const secret = `/usr/local/share/sandbox-test-secret-${randomBytes(4).toString("hex")}`;
    await writeFile(secret, "host secret\n", { mode: 0o600 });
    try {
      const result = await execute("snooper", `ls -l ${secret}; cat ${secret}`);
      expect(result.stdout).toContain(secret.split("/").pop());
      expect(result.stdout + result.stderr).not.toContain("host secret");
      expect(result.stderr).toMatch(/Permission denied/);
    } finally {
      await rm(secret, { force: true });
    }
  });

  it("gives each workspace to its own uid, so no other sandbox uid can open it even on the host", async () => {
    await execute("owner-a", "echo private > secret.txt");
    await execute("owner-b", "true");
    const a = await stat(join(root, "owner-a"));
    const b = await stat(join(root, "owner-b"));
    expect(a.mode & 0o777).toBe(0o700);
    expect(a.uid).not.toBe(b.uid);
    expect(() =>
      execFileSync("setpriv", [`--reuid=${b.uid}`, `--regid=${b.gid}`, "--clear-groups", "cat", join(root, "owner-a", "secret.txt")], {
        stdio: "pipe",
      }),
    ).toThrow(/Permission denied/);
  });

  it("sees a container's /etc, not the host's", async () => {
    const result = await execute(
      "etc",
      [
        "ls -A /etc/ssh 2>/dev/null | wc -l",
        "test -e /etc/ssl/private && echo HAS_PRIVATE",
        "test -e /etc/shadow && echo HAS_SHADOW",
        "test -e /etc/machine-id && echo HAS_MACHINE_ID",
        "getent passwd root",
        "python3 -c 'print(\"python ok\")'",
        "sh -c 'echo sh ok'",
        "ls / > /dev/null && echo ls ok",
        "awk 'BEGIN { print \"awk ok\" }'",
        "test -s /etc/ssl/certs/ca-certificates.crt && echo certs ok",
        "hostname",
      ].join("; "),
    );
    expect(result.stdout).not.toMatch(/HAS_/);
    expect(result.stdout.split("\n")[0]).toBe("0");
    for (const line of ["root:x:0:0:root:/root:/bin/sh", "python ok", "sh ok", "ls ok", "awk ok", "certs ok", "sandbox"])
      expect(result.stdout).toContain(line);
  });

  it("lets a job write its workspace and /tmp and nothing else", async () => {
    const targets = ["/usr/evil", "/etc/evil", "/outside", "/run/evil", "/var/evil", "/run/sandbox/evil", "/dev/evil"];
    const result = await execute(
      "writer",
      `echo ok > /workspace/inside.txt; echo ok > /tmp/t && echo tmp ok; ${targets.map((t) => `echo x > ${t} 2>/dev/null || echo refused ${t}`).join("; ")}`,
    );
    expect(await readFile(join(root, "writer", "inside.txt"), "utf8")).toBe("ok\n");
    expect(result.stdout).toContain("tmp ok");
    for (const target of targets) expect(result.stdout).toContain(`refused ${target}`);
    await expect(readFile("/usr/evil")).rejects.toThrow();
    await expect(readFile("/etc/evil")).rejects.toThrow();
    // The workspace outlives the container; /tmp does not.
    expect((await call("DELETE", "/v1/containers/writer")).status).toBe(204);
    const restarted = await execute("writer", "cat /workspace/inside.txt; cat /tmp/t 2>/dev/null || echo tmp gone");
    expect(restarted.stdout).toBe("ok\ntmp gone");
  });

  it("keeps /tmp and files private to each sandbox", async () => {
    await execute("tenant-a", "echo private > secret.txt; echo private > /tmp/note");
    const snoop = await execute(
      "tenant-b",
      `cat /tmp/note; cat /workspace/../tenant-a/secret.txt; ls ${root} 2>&1; find / -xdev -name secret.txt 2>/dev/null; cat /proc/*/root/workspace/secret.txt 2>/dev/null`,
    );
    expect(snoop.stdout).not.toContain("private");
    expect(snoop.stdout).not.toContain("secret.txt");
  });
  it("ends a cancelled streamed command's session once the client kills its processes; one that left it (setsid) stays, as on Cloudflare's server", async () => {
    const marker = uniqueSleep();
    const client = new AbortController();
    await streamUntil(
      "quitter",
      `${marker} & (setsid ${marker} &); nohup ${marker} >/dev/null 2>&1 & echo started; wait`,
      "started",
      client.signal,
    );
    // setsid and nohup exec into sleep a moment after "started" is printed.
    await expect.poll(() => processesRunning(marker).length, { timeout: 3_000 }).toBeGreaterThanOrEqual(3);
    client.abort();
    // What the consumer does after cancelling a stream: sandbox.killAllProcesses().
    const killed = await call("DELETE", "/v1/containers/quitter/ports/3000/api/process/kill-all");
    expect(killed.status).toBe(200);
    await expect.poll(() => processesRunning(marker).length, { timeout: 5_000 }).toBe(1);
    expect(await execute("quitter", "echo next")).toMatchObject({ exitCode: 0, stdout: "next" });
    // The runner ends a job's processes itself (sandbox/childCommand.ts); a destroyed container takes the rest.
    expect((await call("DELETE", "/v1/containers/quitter")).status).toBe(204);
    await expect.poll(() => processesRunning(marker), { timeout: 5_000 }).toEqual([]);
  });

  it("leaves what a command started in the background running, as Cloudflare's container server does", async () => {
    const marker = uniqueSleep();
    const result = await execute("daemon", `(setsid ${marker} > /dev/null 2>&1 &); (${marker} > /dev/null &) ; echo started`);
    expect(result.stdout).toBe("started");
    await expect.poll(() => processesRunning(marker).length, { timeout: 3_000 }).toBe(2);
    expect((await execute("daemon", "ps -eo args")).stdout).toContain(marker);
    // The runner ends a job's processes itself; a destroyed container takes the rest with it.
    expect((await call("DELETE", "/v1/containers/daemon")).status).toBe(204);
    await expect.poll(() => processesRunning(marker), { timeout: 5_000 }).toEqual([]);
  });

  it("kills a command that uses more memory than its sandbox may (exit 137), and carries on", async () => {
    const hog = await execute("hog", "python3 -c 'x = bytearray(600 * 1024 * 1024); print(len(x))'");
    expect(hog.stdout).not.toContain("629145600");
    expect(hog.exitCode).toBe(137);
    expect(await execute("hog", "echo alive")).toMatchObject({ exitCode: 0, stdout: "alive" });
  });

  it("caps how many processes a sandbox may run", async () => {
    // In a subshell: a shell that cannot fork exits, and the session's own shell must not be the one.
    const bomb = await execute("forker", "(for i in $(seq 1 300); do sleep 2 & done; wait; echo finished)");
    expect(bomb.stderr).toMatch(/fork|Resource temporarily unavailable/i);
    expect(await execute("forker", "echo alive")).toMatchObject({ exitCode: 0, stdout: "alive" });
  }, 30_000);

  it("survives `kill -9 -1`: only that container ends, and the next start works", async () => {
    expect((await execute("bystander", "echo here")).stdout).toBe("here");
    await start("kill-all");
    const monitor = call("GET", "/v1/containers/kill-all/monitor").then(async (response) => ContainerExit.parse(await response.json()));
    await agent("kill-all", "/api/execute", { command: "kill -9 -1; sleep 1", sessionId: "test" }).catch(() => undefined);
    expect((await monitor).exitCode).not.toBe(0);
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/kill-all")).json())).toEqual({ running: false });
    expect(ContainerState.parse(await (await call("GET", "/v1/containers/bystander")).json())).toEqual({ running: true });
    expect(await execute("bystander", "echo still here")).toMatchObject({ exitCode: 0, stdout: "still here" });
    expect(await execute("kill-all", "echo back")).toMatchObject({ exitCode: 0, stdout: "back" });
  });
});

describe("local container host: after a crash", () => {
  it("takes its containers down when killed, and the next host clears what it left behind", async () => {
    const root = await mkdtemp(join(tmpdir(), "host-crash-"));
    // node itself (not the tsx CLI, which would run the host in a child process) so SIGKILL hits the host.
    const crashed = spawn(process.execPath, ["--import", "tsx", "container/local/main.ts", "--port", "0", "--root", root], {
      env: { ...process.env, LOCAL_SANDBOX_TOKEN: token },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let next: RunningHost | undefined;
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = "";
        crashed.stderr?.setEncoding("utf8").on("data", (part: string) => {
          output += part;
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        crashed.on("exit", () => reject(new Error(`the host exited while starting: ${output}`)));
      });
      const { agent, start } = frontClient(() => ({ url, close: async () => {} }));
      const marker = uniqueSleep();
      await start("crash");
      const stream = await agent("crash", "/api/execute/stream", { command: `echo started; ${marker}`, sessionId: "test" });
      const reader = stream.body?.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("started")) seen += (await reader?.read())?.value ?? "";
      await expect.poll(() => processesRunning(marker), { timeout: 3_000 }).toHaveLength(1);

      crashed.kill("SIGKILL");
      await expect.poll(() => processesRunning(marker), { timeout: 3_000 }).toEqual([]);
      const leftovers = () => [
        ...readdirSync("/tmp").filter((name) => name.startsWith(`asb-${crashed.pid}-`)),
        ...readdirSync(cgroupParent("memory")).filter((name) => name.startsWith(`artifact-sandbox-${crashed.pid}-`)),
        ...readdirSync(cgroupParent("pids")).filter((name) => name.startsWith(`artifact-sandbox-${crashed.pid}-`)),
      ];
      expect(leftovers()).toHaveLength(3);
      next = await startHost({ root, token, port: 0 });
      expect(leftovers()).toEqual([]);
    } finally {
      crashed.kill("SIGKILL");
      await next?.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** This process's own cgroup v1 directory for a controller (where hosts make theirs). */
function cgroupParent(controller: "memory" | "pids"): string {
  const line = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((entry) => entry.split(":")[1]?.split(",").includes(controller));
  return join(`/sys/fs/cgroup/${controller}`, line?.split(":")[2] ?? "/");
}
