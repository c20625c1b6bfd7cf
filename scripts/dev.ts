/**
 * `npm run dev`: the local container host and the Worker under wrangler's dev server together;
 * one Ctrl-C stops both.
 * State (KV, R2, queues, sandbox workspaces) lives under .wrangler/ (or ARTIFACT_SANDBOX_STATE_DIR)
 * and survives restarts.
 */
import { CapacitySettingError } from "../container/local/capacity";
import { ContainerServerError } from "../container/local/containerServer";
import { HostStartError } from "../container/local/host";
import { ApiPortError } from "./directWorker";
import { startLocalStack, waitUntilServing } from "./localStack";

/** Worker settings a local run may change from its environment; anything else comes from wrangler.jsonc. */
const OVERRIDABLE_VARS = [
  "ARTIFACT_MAX_TOTAL_BYTES",
  "SANDBOX_IDLE_TTL_SECONDS",
  "MAX_ACTIVE_JOBS_PER_TENANT",
  "MAX_SANDBOXES_PER_TENANT",
  "TENANT_MAX_CONTAINERS",
  "METRICS_TOKEN",
];

function workerVarsFromEnvironment(): Record<string, string> {
  const vars: Record<string, string> = {
    // Anonymous requests act as tenant "local", unless the developer asks for deployed behaviour.
    REQUIRE_API_KEYS: process.env.REQUIRE_API_KEYS === "1" ? "1" : "0",
    // Webhooks to a receiver on this machine (http://127.0.0.1:...) are allowed locally.
    WEBHOOK_ALLOW_PRIVATE_DESTINATIONS: "1",
  };
  for (const name of OVERRIDABLE_VARS) {
    const value = process.env[name];
    if (value) vars[name] = value;
  }
  return vars;
}

async function main(): Promise<void> {
  const stack = await startLocalStack({
    apiPort: Number(process.env.PORT ?? 8787),
    hostPort: Number(process.env.SANDBOX_HOST_PORT ?? 8788),
    stateDir: process.env.ARTIFACT_SANDBOX_STATE_DIR ?? ".wrangler",
    network: process.env.SANDBOX_NETWORK === "none" ? "none" : "outbound",
    // Every request is printed, as `wrangler dev` does; ARTIFACT_SANDBOX_LOG_LEVEL=warn for quiet.
    logLevel: process.env.ARTIFACT_SANDBOX_LOG_LEVEL === "warn" ? "warn" : "info",
    workerVars: workerVarsFromEnvironment(),
    resourceLimits: {
      memoryBytes: Number(process.env.SANDBOX_MEMORY_MB ?? 2048) * 1024 * 1024,
      maxProcesses: Number(process.env.SANDBOX_MAX_PROCESSES ?? 1024),
    },
  });
  console.log(`local container host: ${stack.hostUrl} (workspaces in ${stack.sandboxesDir})`);

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    void stack.stop().then(() => process.exit(code));
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));

  await waitUntilServing(stack.apiUrl);
  console.log(`\nartifact-sandbox is running at ${stack.apiUrl}  (Ctrl-C stops everything)\n`);
}

main().catch((error: unknown) => {
  const known =
    error instanceof HostStartError ||
    error instanceof ContainerServerError ||
    error instanceof CapacitySettingError ||
    error instanceof ApiPortError;
  console.error(known ? error.message : error);
  process.exit(1);
});
