/**
 * Starts the local container host: checks that bubblewrap works, prepares the shared pieces
 * every container uses (the agent bundle, Cloudflare's server in reference mode, the generated
 * /etc files, the cgroups), then serves the Front API on 127.0.0.1. Used by `npm run dev`, the
 * test setup and the benchmark.
 */
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { buildAgentBundle } from "./agent/bundle";
import { ContainerServerError, type ContainerServerSetting, type ReferenceServer, resolveReferenceServer } from "./containerServer";
import { ContainerPool } from "./containers";
import { writeGeneratedEtc } from "./etcView";
import { createFrontApp } from "./front";
import { SANDBOX_UID_MIN, SandboxUids } from "./identity";
import { ensureBubblewrap } from "./isolation";
import { killDeadHostProcesses, removeDeadHostRuntimeDirs } from "./leftovers";
import { CgroupLimiter, DEFAULT_RESOURCE_LIMITS, type ResourceLimits } from "./limits";
import { ensureNetworkSupport, type NetworkPolicy, writeNetworkFiles } from "./network";
import { prepareSharedParent, untraversableAncestor } from "./workspace";

export interface StartHostOptions {
  /** Directory holding one workspace directory per sandbox key (kept across container restarts). */
  root: string;
  token: string;
  /** 0 picks a free port. */
  port: number;
  /** "outbound": containers may open outbound connections (private ranges blocked); "none": no network. */
  network?: NetworkPolicy;
  /** Memory and process caps per sandbox (cgroups, when the host runs as root). */
  resourceLimits?: ResourceLimits;
  /** Our agent (the default) or Cloudflare's own container server in each container. */
  containerServer?: ContainerServerSetting;
  /** How many containers may run at once (wrangler.jsonc's max_instances; see capacity.ts); unlimited if unset. */
  maxContainers?: number;
  /** A container nobody has used for this long is ended (default 5 minutes). */
  idleMs?: number;
  /** A prebuilt agent bundle to run in each container instead of building container/local/agent. */
  agentFile?: string;
  log?: (line: string) => void;
}

export interface RunningHost {
  url: string;
  close(): Promise<void>;
}

export class HostStartError extends Error {
  override readonly name = "HostStartError";
}

const DEFAULT_IDLE_MS = 5 * 60 * 1000;
const READY_TIMEOUT_MS = 20_000;
const RUNTIME_DIR_PREFIX = "asb-";

export async function startHost(options: StartHostOptions): Promise<RunningHost> {
  const log = options.log ?? ((line: string) => console.error(line));
  if (options.token.length < 16) throw new HostStartError("The local container host needs a token of at least 16 characters");
  const asRoot = process.getuid?.() === 0;
  const problem = ensureBubblewrap(SANDBOX_UID_MIN, log);
  if (problem) throw new HostStartError(problem);
  if (!asRoot) log("WARNING: the local container host is not root: every sandbox runs as this user's uid, without memory or process caps.");
  const referenceServer = prepareReferenceServer(options.containerServer);

  const network = options.network ?? "outbound";
  if (network === "outbound") {
    const networkProblem = ensureNetworkSupport(SANDBOX_UID_MIN, log);
    if (networkProblem) throw new HostStartError(networkProblem);
  }

  const parentProblem = await prepareSharedParent(options.root);
  if (parentProblem) throw new HostStartError(parentProblem);
  // Short and private: socket paths must fit in 108 bytes, and sandboxes may only traverse it.
  // A container process that outlived its host anyway goes before the host's directory.
  const killed = killDeadHostProcesses("/tmp", RUNTIME_DIR_PREFIX);
  if (killed > 0) log(`Killed ${killed} container processes left by local container hosts that no longer run.`);
  removeDeadHostRuntimeDirs("/tmp", RUNTIME_DIR_PREFIX);
  const runtimeDir = await mkdtemp(`/tmp/${RUNTIME_DIR_PREFIX}${process.pid}-`);
  await chmod(runtimeDir, 0o711);
  const agentFile = join(runtimeDir, "agent.mjs");
  await buildAgent(options.agentFile, agentFile);
  await chmod(agentFile, 0o644);
  const generatedEtcDir = join(runtimeDir, "etc");
  await writeGeneratedEtc(generatedEtcDir);
  const networkFilesDir = join(runtimeDir, "network");
  await writeNetworkFiles(networkFilesDir);
  const runtimeRoot = join(runtimeDir, "run");
  await mkdir(runtimeRoot, { mode: 0o711 });

  const reference = referenceServer && (await placeReferenceServer(referenceServer, runtimeDir));
  if (referenceServer) log(`Container server: Cloudflare's own (${referenceServer.serverFile}, Bun at ${referenceServer.bunBinary}).`);

  const resourceLimits = options.resourceLimits ?? DEFAULT_RESOURCE_LIMITS;
  let limiter: CgroupLimiter | undefined;
  if (asRoot) {
    const created = await CgroupLimiter.create(resourceLimits, `${process.pid}-${randomBytes(3).toString("hex")}`);
    if (typeof created === "string") log(`Resource limits: off: ${created}.`);
    else {
      limiter = created;
      log(`Resource limits: ${created.describe(resourceLimits)}.`);
    }
  } else log("Resource limits: off: the host does not run as root.");
  const pool = new ContainerPool({
    workspaceRoot: options.root,
    runtimeRoot,
    generatedEtcDir,
    agentFile,
    referenceServer: reference,
    maxContainers: options.maxContainers ?? Number.POSITIVE_INFINITY,
    network,
    networkFilesDir,
    uids: asRoot ? new SandboxUids() : undefined,
    limiter,
    idleMs: options.idleMs ?? DEFAULT_IDLE_MS,
    readyTimeoutMs: READY_TIMEOUT_MS,
    log,
  });
  const app = createFrontApp(pool, options.token);
  const releaseShared = async () => {
    await pool.closeAll();
    await limiter?.releaseAll();
    await rm(runtimeDir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    // No keep-alive timeout, as the agent has none: workerd, the client, closes idle connections.
    const serverOptions = { keepAliveTimeout: 0 };
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: options.port, serverOptions }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: async () => {
          // Ending the containers first lets held-open monitors answer; then nothing may hold close().
          await pool.closeAll();
          if ("closeAllConnections" in server) server.closeAllConnections();
          await new Promise<void>((done) => server.close(() => done()));
          await releaseShared();
        },
      });
    });
    server.on("error", (error) => {
      if (server.listening) return log(`local container host: server error: ${error.message}`);
      // Could not listen (port taken): leave nothing behind.
      void releaseShared().then(() => reject(error));
    });
  });
}

/** Finds Cloudflare's server and Bun for reference mode (and says so), or nothing for the agent. */
function prepareReferenceServer(setting: ContainerServerSetting | undefined): ReferenceServer | undefined {
  if (setting?.kind !== "reference") return undefined;
  try {
    return resolveReferenceServer(setting.serverFile);
  } catch (error) {
    if (error instanceof ContainerServerError) throw new HostStartError(error.message);
    throw error;
  }
}

/**
 * Makes the server and Bun readable by sandbox uids: the bundle is copied beside the agent; Bun
 * is bound where it is unless a directory on its way is closed to other users (a checkout under
 * /root), in which case it is copied too.
 */
async function placeReferenceServer(found: ReferenceServer, runtimeDir: string): Promise<ReferenceServer> {
  const serverFile = join(runtimeDir, "sandbox-container.js");
  await copyFile(found.serverFile, serverFile);
  await chmod(serverFile, 0o644);
  if (!(await untraversableAncestor(found.bunBinary))) return { serverFile, bunBinary: found.bunBinary };
  const bunBinary = join(runtimeDir, "bun");
  await copyFile(found.bunBinary, bunBinary);
  await chmod(bunBinary, 0o755);
  return { serverFile, bunBinary };
}

/** Puts the agent that containers run at `outFile`: a given prebuilt file, or a fresh bundle. */
async function buildAgent(prebuilt: string | undefined, outFile: string): Promise<void> {
  if (prebuilt) {
    await copyFile(prebuilt, outFile);
    return;
  }
  await buildAgentBundle(outFile).catch((error: unknown) => {
    throw new HostStartError(`Cannot bundle the sandbox agent: ${error instanceof Error ? error.message : String(error)}`);
  });
}
