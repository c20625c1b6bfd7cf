/**
 * Vitest global setup of the worker-capacity project: a local container host that runs
 * CAPACITY_HOST_CONTAINERS containers at most, the Worker's only host there, so that the
 * account's cap (max_instances deployed) and the tenant cap below it are both reached by a few
 * sandboxes (test/worker/capacity/).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { containerServerSetting } from "../../container/local/containerServer";
import { startHost } from "../../container/local/host";

/** The host's cap; the project's TENANT_MAX_CONTAINERS (vitest.config.ts) is one less. */
export const CAPACITY_HOST_CONTAINERS = 3;

declare module "vitest" {
  export interface ProvidedContext {
    capacityHost: { url: string; token: string; containerServer: "agent" | "reference" };
  }
}

export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), "artifact-sandbox-capacity-"));
  const token = randomBytes(24).toString("hex");
  const containerServer = containerServerSetting(process.env);
  const host = await startHost({ root, token, port: 0, containerServer, maxContainers: CAPACITY_HOST_CONTAINERS, log: () => {} });
  project.provide("capacityHost", { url: host.url, token, containerServer: containerServer.kind });
  return async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
  };
}
