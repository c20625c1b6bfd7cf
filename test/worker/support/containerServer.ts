/**
 * Which server plays the container in this run: our agent, or Cloudflare's own
 * (`npm run test:reference`), as vitest.config.ts hands it over (a test-only binding, not in Env).
 * For the few expectations that differ between the two, each with the reason beside it.
 */
import { env } from "cloudflare:test";

function readContainerServer(): "agent" | "reference" {
  const value: unknown = Reflect.get(env, "TEST_CONTAINER_SERVER");
  if (value === "agent" || value === "reference") return value;
  throw new Error("vitest.config.ts defines no TEST_CONTAINER_SERVER binding");
}

export const containerServer = readContainerServer();
export const onReferenceServer = containerServer === "reference";
