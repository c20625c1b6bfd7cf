/**
 * `npm run dev`: the local sandbox host and `wrangler dev` together, one Ctrl-C stops both.
 * State (KV, R2, queues, sandbox workspaces) lives under .wrangler/ and survives restarts.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { HostStartError, startHost } from "../container/local/host";

const apiPort = Number(process.env.PORT ?? 8787);
const hostPort = Number(process.env.SANDBOX_HOST_PORT ?? 8788);
const isolation = process.env.SANDBOX_ISOLATION === "none" ? "none" : "bubblewrap";

async function main(): Promise<void> {
  // A fresh token per run, handed to wrangler through a private env file, never on a command line.
  const token = randomBytes(24).toString("hex");
  await mkdir(".wrangler/dev", { recursive: true });
  const envFile = ".wrangler/dev/local-sandbox.env";
  await writeFile(envFile, `LOCAL_SANDBOX_TOKEN=${token}\n`, { mode: 0o600 });

  const host = await startHost({ root: resolve(".wrangler/sandboxes"), token, port: hostPort, isolation });
  console.log(`local sandbox host: ${host.url} (isolation: ${host.isolation}, workspaces in .wrangler/sandboxes)`);

  // Spawned directly (not through npx) so a stop signal reaches wrangler itself.
  const wrangler = spawn(
    resolve("node_modules/.bin/wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(apiPort),
      "--var",
      "SANDBOX_BACKEND:local",
      "--var",
      `LOCAL_SANDBOX_URL:${host.url}`,
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
    ],
    { stdio: "inherit" },
  );
  console.log(`artifact-sandbox API: http://localhost:${apiPort}  (Ctrl-C stops everything)`);

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    wrangler.kill("SIGINT");
    void host.close().then(() => process.exit(code));
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  wrangler.on("exit", (code) => stop(code ?? 0));
}

main().catch((error: unknown) => {
  console.error(error instanceof HostStartError ? error.message : error);
  process.exit(1);
});
