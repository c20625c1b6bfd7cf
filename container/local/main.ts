/**
 * CLI for the local container host: `tsx container/local/main.ts --port 8788 --root .wrangler/sandboxes`.
 * The bearer token comes from LOCAL_SANDBOX_TOKEN so it never shows in a process list;
 * SANDBOX_NETWORK=none gives every container no network at all; SANDBOX_CONTAINER=reference runs
 * Cloudflare's own container server in each; SANDBOX_MAX_CONTAINERS caps how many run at once.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CapacitySettingError, maxContainersSetting } from "./capacity";
import { ContainerServerError, containerServerSetting } from "./containerServer";
import { HostStartError, startHost } from "./host";
import { hostNetworkPolicy } from "./network";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8788" },
    root: { type: "string", default: ".wrangler/sandboxes" },
  },
});

const token = process.env.LOCAL_SANDBOX_TOKEN ?? "";
const network = hostNetworkPolicy(process.env.SANDBOX_NETWORK);

try {
  const host = await startHost({
    root: resolve(values.root),
    token,
    port: Number(values.port),
    network,
    containerServer: containerServerSetting(process.env),
    maxContainers: await maxContainersSetting(process.env),
  });
  console.error(`local container host listening on ${host.url} (network: ${network}, workspaces in ${values.root})`);
  const stop = () => void host.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  const known = error instanceof HostStartError || error instanceof ContainerServerError || error instanceof CapacitySettingError;
  console.error(known ? error.message : error);
  process.exit(1);
}
