/**
 * How many containers the local host runs at once: SANDBOX_MAX_CONTAINERS, else the Sandbox
 * class's `max_instances` in wrangler.jsonc, the cap Cloudflare enforces deployed. Read where a
 * host is started from the environment (`npm run dev`, the test setup, the host's own CLI).
 */
import { fileURLToPath } from "node:url";

const WRANGLER_CONFIG = fileURLToPath(new URL("../../wrangler.jsonc", import.meta.url));

export class CapacitySettingError extends Error {
  override readonly name = "CapacitySettingError";
}

export async function maxContainersSetting(env: NodeJS.ProcessEnv): Promise<number> {
  const value = env.SANDBOX_MAX_CONTAINERS;
  if (value !== undefined && value !== "") {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1)
      throw new CapacitySettingError(`SANDBOX_MAX_CONTAINERS must be a positive integer, not "${value}"`);
    return parsed;
  }
  // Loaded only when needed: wrangler takes a second or two to import.
  const { experimental_readRawConfig } = await import("wrangler");
  const { rawConfig } = experimental_readRawConfig({ config: WRANGLER_CONFIG });
  const configured = rawConfig.containers?.[0]?.max_instances;
  if (typeof configured !== "number" || !Number.isInteger(configured) || configured < 1) {
    throw new CapacitySettingError(`${WRANGLER_CONFIG} sets no containers[0].max_instances; set SANDBOX_MAX_CONTAINERS`);
  }
  return configured;
}
