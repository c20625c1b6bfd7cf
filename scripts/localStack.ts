/**
 * Starts the whole local stack: the local sandbox host and `wrangler dev` (miniflare's local
 * Queues, KV and R2) wired to it. Used by `npm run dev` and `npm run bench`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { startHost } from "../container/local/host";
import type { ResourceLimits } from "../container/local/limits";

export interface LocalStackOptions {
  apiPort: number;
  hostPort: number;
  /** Holds wrangler's state, the sandbox workspaces and the token file. */
  stateDir: string;
  /** Outbound network for sandboxes (loopback and private ranges always blocked), or none. */
  network?: "outbound" | "none";
  /** Where wrangler's output goes: the terminal, or nowhere (benchmarks). */
  wranglerOutput: "inherit" | "ignore";
  resourceLimits?: ResourceLimits;
  /** Worker vars that override wrangler.jsonc's for this run (e.g. a larger ARTIFACT_MAX_TOTAL_BYTES). */
  workerVars?: Record<string, string>;
}

export interface LocalStack {
  apiUrl: string;
  hostUrl: string;
  stateDir: string;
  /** The local host's bearer token (for tools that call the host directly, like the benchmark). */
  hostToken: string;
  wrangler: ChildProcess;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  // A fresh token per run, handed to wrangler through a private env file, never on a command line.
  const token = randomBytes(24).toString("hex");
  const devDir = join(options.stateDir, "dev");
  await mkdir(devDir, { recursive: true });
  const envFile = join(devDir, "local-sandbox.env");
  await writeFile(envFile, `LOCAL_SANDBOX_TOKEN=${token}\n`, { mode: 0o600 });

  const host = await startHost({
    root: resolve(options.stateDir, "sandboxes"),
    token,
    port: options.hostPort,
    network: options.network,
    resourceLimits: options.resourceLimits,
  });

  // Spawned directly (not through npx) so a stop signal reaches wrangler itself.
  const wrangler = spawn(
    resolve("node_modules/.bin/wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(options.apiPort),
      "--persist-to",
      join(options.stateDir, "state"),
      "--var",
      `LOCAL_SANDBOX_URL:${host.url}`,
      ...Object.entries(options.workerVars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
    ],
    { stdio: ["ignore", options.wranglerOutput, options.wranglerOutput] },
  );

  const apiUrl = `http://localhost:${options.apiPort}`;
  const sweeper = startSweeper(apiUrl);
  return {
    apiUrl,
    hostUrl: host.url,
    stateDir: options.stateDir,
    hostToken: token,
    wrangler,
    async stop() {
      sweeper.stop();
      if (wrangler.exitCode === null) {
        const exited = new Promise((done) => wrangler.once("exit", done));
        wrangler.kill("SIGINT");
        await exited;
      }
      await host.close();
    },
  };
}

/** Resolves once the API answers, or rejects after `timeoutMs`. */
export async function waitUntilServing(apiUrl: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${apiUrl}/v1/openapi.json`).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`The API did not come up at ${apiUrl} within ${timeoutMs} ms`);
}

/** How often the local stack runs the sweeper, as the deployed cron trigger does every minute. */
const SWEEP_INTERVAL_MS = 20_000;

/**
 * Cron triggers do not fire under `wrangler dev`, and its queue keeps undelivered messages in
 * memory only: the local stack calls the Worker's scheduled handler itself, once it serves (so a
 * restart takes over the jobs the crashed runners held at once) and then periodically.
 */
function startSweeper(apiUrl: string): { stop(): void } {
  const runSweep = () =>
    fetch(`${apiUrl}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`).then(
      (response) => response.body?.cancel(),
      () => undefined,
    );
  let timer: ReturnType<typeof setInterval> | undefined;
  void waitUntilServing(apiUrl).then(
    () => {
      void runSweep();
      timer = setInterval(runSweep, SWEEP_INTERVAL_MS);
    },
    () => undefined,
  );
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
