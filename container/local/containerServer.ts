/**
 * Which server plays the SDK's container inside each sandbox: our agent (the default), or
 * Cloudflare's own container server (`SANDBOX_CONTAINER=reference`), the bundle of
 * packages/sandbox-container that deployed sandboxes run, under the pinned Bun. The reference
 * server is not part of this repository; the mode refuses to start without it and says why.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The Bun the reference bundle was built with and is run under; package.json pins the same. */
export const BUN_VERSION = "1.4.4";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Where a checkout beside the shared reference material finds the bundle. */
export const DEFAULT_REFERENCE_SERVER = resolve(REPO_ROOT, "../shared/reference/sandbox-container/sandbox-container.js");

export type ContainerServerSetting = { kind: "agent" } | { kind: "reference"; serverFile: string };

/** Cloudflare's server and the Bun binary that runs it, both found on this machine. */
export interface ReferenceServer {
  serverFile: string;
  bunBinary: string;
}

export class ContainerServerError extends Error {
  override readonly name = "ContainerServerError";
}

/** The setting from SANDBOX_CONTAINER (agent | reference) and SANDBOX_REFERENCE_SERVER. */
export function containerServerSetting(env: NodeJS.ProcessEnv): ContainerServerSetting {
  const value = env.SANDBOX_CONTAINER ?? "";
  if (value === "" || value === "agent") return { kind: "agent" };
  if (value === "reference") return { kind: "reference", serverFile: resolve(env.SANDBOX_REFERENCE_SERVER || DEFAULT_REFERENCE_SERVER) };
  throw new ContainerServerError(`SANDBOX_CONTAINER must be "agent" (the default) or "reference", not "${value}"`);
}

/** Finds the server bundle and a Bun of BUN_VERSION, or throws saying what is missing and what to set. */
export function resolveReferenceServer(serverFile: string): ReferenceServer {
  if (!existsSync(serverFile)) {
    throw new ContainerServerError(
      `SANDBOX_CONTAINER=reference runs Cloudflare's own container server, but ${serverFile} does not exist.\n` +
        "That bundle (packages/sandbox-container of the cloudflare/sandbox-sdk repository, built with `bun build --target=bun`,\n" +
        "listening on SANDBOX_CONTAINER_PORT) is not part of this repository. Point SANDBOX_REFERENCE_SERVER at one,\n" +
        "or leave SANDBOX_CONTAINER unset (or set it to agent) to run our own agent.",
    );
  }
  return { serverFile: realpathSync(serverFile), bunBinary: findBun() };
}

/**
 * The Bun binary: the pinned devDependency (`bun`, whose postinstall moves the platform
 * package's binary into bun/bin; where install scripts did not run, the platform package
 * still holds it), else `npx -y bun@BUN_VERSION`. The real binary's path is returned, since it
 * is bound into each sandbox.
 */
function findBun(): string {
  const modules = join(REPO_ROOT, "node_modules");
  const platformPackages = existsSync(join(modules, "@oven"))
    ? readdirSync(join(modules, "@oven"))
        .filter((name) => name.startsWith(`bun-${process.platform}-`))
        .map((name) => join(modules, "@oven", name, "bin", "bun"))
    : [];
  for (const candidate of [join(modules, "bun", "bin", "bun.exe"), ...platformPackages]) {
    if (existsSync(candidate) && bunVersion(candidate) === BUN_VERSION) return realpathSync(candidate);
  }
  // Not installed here (e.g. `npm install --omit=dev`): npx fetches the same package. It runs
  // outside the checkout so that a placeholder in node_modules/.bin cannot answer.
  const viaNpx = spawnSync("npx", ["-y", `bun@${BUN_VERSION}`, "-e", "process.stdout.write(process.execPath)"], {
    cwd: tmpdir(),
    encoding: "utf8",
    timeout: 120_000,
  });
  const path = viaNpx.status === 0 ? viaNpx.stdout.trim() : "";
  if (path !== "" && bunVersion(path) === BUN_VERSION) return realpathSync(path);
  throw new ContainerServerError(
    `SANDBOX_CONTAINER=reference needs Bun ${BUN_VERSION}: it is not in node_modules (run npm ci) and ` +
      `\`npx -y bun@${BUN_VERSION}\` failed: ${`${viaNpx.stderr ?? ""}${viaNpx.error?.message ?? ""}`.trim() || `exit ${viaNpx.status}`}`,
  );
}

function bunVersion(binary: string): string | undefined {
  const result = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}
