/**
 * CLI for the local sandbox host: `tsx container/local/main.ts --port 8788 --root .wrangler/sandboxes`.
 * The bearer token comes from LOCAL_SANDBOX_TOKEN so it never shows in a process list.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { HostStartError, startHost } from "./host";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8788" },
    root: { type: "string", default: ".wrangler/sandboxes" },
  },
});

const token = process.env.LOCAL_SANDBOX_TOKEN ?? "";
const isolation = process.env.SANDBOX_ISOLATION === "none" ? "none" : "bubblewrap";

try {
  const host = await startHost({ root: resolve(values.root), token, port: Number(values.port), isolation });
  console.error(`local sandbox host listening on ${host.url} (isolation: ${host.isolation}, workspaces in ${values.root})`);
  const stop = () => void host.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  console.error(error instanceof HostStartError ? error.message : error);
  process.exit(1);
}
