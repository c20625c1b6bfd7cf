/**
 * The local container host on its own, in its own process (`container/local/main.ts`): the SDK
 * container protocol (`POST /v1/containers/{key}/ports/3000/api/execute`) through the Front API,
 * one at a time and with `concurrency` containers at once, all started beforehand.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { BENCH_MAX_CONTAINERS } from "./options";
import { type PoolRun, runPool, sleep } from "./stats";

export interface HostAloneRuns {
  /** Exec of `true` one at a time, in one started container. */
  sequential: PoolRun;
  /** `count` execs with `concurrency` containers at once. */
  parallel: PoolRun;
  /** GET /api/ping one at a time: the protocol's round trip with no command. */
  ping: PoolRun;
}

interface RunningHost {
  url: string;
  token: string;
  child: ChildProcess;
}

async function startHostProcess(stateDir: string, port: number): Promise<RunningHost> {
  const token = randomBytes(24).toString("hex");
  const child = spawn(
    resolve("node_modules/.bin/tsx"),
    ["container/local/main.ts", "--port", String(port), "--root", join(stateDir, "host-alone")],
    {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, LOCAL_SANDBOX_TOKEN: token, SANDBOX_MAX_CONTAINERS: String(BENCH_MAX_CONTAINERS) },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the container host exited ${child.exitCode} while starting`);
    const up = await fetch(`${url}/v1/containers/probe`, { headers: { authorization: `Bearer ${token}` } }).then(
      (response) => response.ok,
      () => false,
    );
    if (up) return { url, token, child };
    await sleep(200);
  }
  child.kill("SIGKILL");
  throw new Error(`the container host did not answer at ${url} within 60 s`);
}

async function call(host: RunningHost, method: string, path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${host.url}/v1/containers/${path}`, {
    method,
    headers: { authorization: `Bearer ${host.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
}

const execTrue = (host: RunningHost, key: string) =>
  call(host, "POST", `${key}/ports/3000/api/execute`, { command: "true", sessionId: "bench", cwd: "/workspace" });

export async function measureHostAlone(stateDir: string, port: number, count: number, concurrency: number): Promise<HostAloneRuns> {
  const host = await startHostProcess(stateDir, port);
  try {
    const keys = Array.from({ length: concurrency }, (_, index) => `bench-host-${index}`);
    for (const key of keys) await call(host, "POST", `${key}/start`, {});
    // Warm every container's session (the first exec creates it) and the client's connections.
    await Promise.all(keys.map((key) => execTrue(host, key)));
    const first = keys[0] ?? "bench-host-0";
    const ping = await runPool(200, 1, () => call(host, "GET", `${first}/ports/3000/api/ping`));
    const sequential = await runPool(200, 1, () => execTrue(host, first));
    const parallel = await runPool(count, concurrency, (_, worker) => execTrue(host, keys[worker] ?? first));
    return { sequential, parallel, ping };
  } finally {
    const exited = new Promise((done) => host.child.once("exit", done));
    host.child.kill("SIGINT");
    await Promise.race([exited, sleep(10_000)]);
  }
}
