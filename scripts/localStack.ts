/**
 * Starts the whole local stack: the local container host and the Worker under wrangler's dev
 * server (miniflare's local Queues, KV, R2 and Durable Objects) wired to it. Used by `npm run
 * dev`, the benchmark and the crash test.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { maxContainersSetting } from "../container/local/capacity";
import { type ContainerServerSetting, containerServerSetting } from "../container/local/containerServer";
import { startHost } from "../container/local/host";
import type { ResourceLimits } from "../container/local/limits";
import { untraversableAncestor } from "../container/local/workspace";
import { DirectDevEnv, serveWorkerDirectly } from "./directWorker";

export interface LocalStackOptions {
  apiPort: number;
  hostPort: number;
  /** Holds the Worker's local state and the sandbox workspaces. */
  stateDir: string;
  /** Outbound network for sandboxes (loopback and private ranges always blocked), or none. */
  network?: "outbound" | "none";
  /** "info" prints every request, as `wrangler dev` does; "warn" only problems. */
  logLevel: "info" | "warn";
  resourceLimits?: ResourceLimits;
  /** Worker vars that override wrangler.jsonc's for this run (e.g. a larger ARTIFACT_MAX_TOTAL_BYTES). */
  workerVars?: Record<string, string>;
  /** What runs in each container; default from SANDBOX_CONTAINER (our agent unless "reference"). */
  containerServer?: ContainerServerSetting;
  /** Containers at once; default from SANDBOX_MAX_CONTAINERS, else wrangler.jsonc's max_instances. */
  maxContainers?: number;
}

export interface LocalStack {
  apiUrl: string;
  hostUrl: string;
  stateDir: string;
  /** Where the sandboxes' workspaces are. */
  sandboxesDir: string;
  /** The local host's bearer token (for tools that call the host directly, like the benchmark). */
  hostToken: string;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  // A fresh token per run; it stays in this process's memory and the Worker's bindings.
  const token = randomBytes(24).toString("hex");
  const sandboxesDir = await sandboxesRoot(options.stateDir);
  const host = await startHost({
    root: sandboxesDir,
    token,
    port: options.hostPort,
    network: options.network,
    resourceLimits: options.resourceLimits,
    containerServer: options.containerServer ?? containerServerSetting(process.env),
    maxContainers: options.maxContainers ?? (await maxContainersSetting(process.env)),
  });

  const vars: Record<string, string> = {
    LOCAL_SANDBOX_URL: host.url,
    // The SDK logs every container call at info level: locally only its warnings, unless asked.
    SANDBOX_LOG_LEVEL: process.env.SANDBOX_LOG_LEVEL ?? "warn",
    ...options.workerVars,
  };
  // Miniflare fetches a real `Request.cf` from workers.cloudflare.com at start, and offline prints
  // a stack trace per Worker instance for it. The Worker never reads `request.cf`, and
  // unstable_startWorker has no `cf` option to pass on (wrangler builds miniflare's options
  // itself), but miniflare takes `cf: false` from this variable when no option is given.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  // wrangler's dev server, as `wrangler dev` runs it, but without its devtools inspector: that
  // records every chunk of every subrequest (Network.dataReceived) and holds and forwards each
  // one, so streaming a large artifact from the container host grew memory by gigabytes and
  // leaked a socket per chunk until the stack stopped answering. Its proxy gets a port of its
  // own that nothing uses: the API port goes straight to the Worker (directWorker.ts says why),
  // and is taken first, so that a port in use fails the start at once.
  const devEnv = new DirectDevEnv();
  const requestLog = options.logLevel === "info" ? (line: string) => console.log(line) : undefined;
  const api = await serveWorkerDirectly(devEnv, "127.0.0.1", options.apiPort, requestLog);
  const worker = await devEnv.startWorker({
    config: "wrangler.jsonc",
    bindings: {
      ...Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, { type: "plain_text" as const, value }])),
      LOCAL_SANDBOX_TOKEN: { type: "secret_text", value: token },
      URL_SIGNING_KEYS: { type: "secret_text", value: await localKey(options.stateDir, "url-signing-key") },
      SECRETS_ENCRYPTION_KEY: { type: "secret_text", value: await localKey(options.stateDir, "secrets-encryption-key") },
    },
    // As `wrangler dev` derives it from the config's `nodejs_compat` flag.
    build: { nodejsCompatMode: (config) => (config.compatibility_flags.includes("nodejs_compat") ? "v2" : null) },
    dev: {
      inspector: false,
      server: { hostname: "127.0.0.1", port: 0 },
      persist: join(options.stateDir, "state"),
      logLevel: options.logLevel,
      watch: false,
      // Serves /__scheduled, through which the local sweeper runs the scheduled handler (below).
      testScheduled: true,
    },
  });
  await worker.ready.catch(async (error: unknown) => {
    await api.close();
    throw error;
  });

  const apiUrl = `http://localhost:${options.apiPort}`;
  const sweeper = startSweeper(apiUrl);
  return {
    apiUrl,
    hostUrl: host.url,
    stateDir: options.stateDir,
    sandboxesDir,
    hostToken: token,
    async stop() {
      sweeper.stop();
      await api.close();
      await worker.dispose();
      await host.close();
    },
  };
}

/**
 * A key kept with the state (URL signing, secrets encryption), so signed URLs and stored secrets
 * stay valid across restarts; made on first start, readable only by its owner.
 */
async function localKey(stateDir: string, file: string): Promise<string> {
  const path = join(stateDir, file);
  const existing = await readFile(path, "utf8").catch(() => undefined);
  if (existing?.trim()) return existing.trim();
  const keys = `local:${randomBytes(32).toString("hex")}`;
  await mkdir(stateDir, { recursive: true });
  await writeFile(path, keys, { mode: 0o600 });
  return keys;
}

/**
 * Where the workspaces live: beside the rest of the state, unless that is somewhere other users
 * cannot pass through (a checkout under /root): sandboxes run as their own uids, so they then go
 * to a directory of their own under /var/tmp.
 */
async function sandboxesRoot(stateDir: string): Promise<string> {
  const beside = resolve(stateDir, "sandboxes");
  const closed = await untraversableAncestor(beside);
  if (!closed) return beside;
  const elsewhere = join("/var/tmp/artifact-sandbox", createHash("sha256").update(beside).digest("hex").slice(0, 12), "sandboxes");
  console.log(`${closed} is closed to other users, so sandbox workspaces are kept in ${elsewhere}`);
  return elsewhere;
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
 * restart takes over the jobs the crashed runners held at once) and then periodically. It goes
 * through wrangler's `/__scheduled` route: miniflare's `/cdn-cgi/handler/scheduled` answered every
 * call with 500 "exception" on this stack without running the handler (no log, no side effect).
 */
function startSweeper(apiUrl: string): { stop(): void } {
  let failing = false;
  const runSweep = () =>
    fetch(`${apiUrl}/__scheduled?cron=*+*+*+*+*`).then(
      async (response) => {
        const text = await response.text();
        // Said once per run of failures: stranded jobs stay stranded while the sweep fails.
        if (!response.ok && !failing)
          console.warn(`local sweeper: the scheduled handler answered ${response.status}: ${text.slice(0, 200)}`);
        failing = !response.ok;
      },
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
