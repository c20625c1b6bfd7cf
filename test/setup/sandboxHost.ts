/**
 * Vitest global setup: starts a real local container host (bubblewrap) for the Worker tests and
 * hands its URL and token to the Worker's bindings through `provide`. SANDBOX_CONTAINER=reference
 * (`npm run test:reference`) runs Cloudflare's own container server in each container instead
 * of our agent, so the same tests run against the real other end of the SDK.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { maxContainersSetting } from "../../container/local/capacity";
import { containerServerSetting } from "../../container/local/containerServer";
import { startHost } from "../../container/local/host";

declare module "vitest" {
  export interface ProvidedContext {
    sandboxHost: { url: string; token: string; root: string; containerServer: "agent" | "reference" };
    /** A second host that runs one container at most, for the test of a start past the cap. */
    cappedSandboxHost: { url: string; token: string };
  }
}

export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), "artifact-sandbox-test-"));
  const token = randomBytes(24).toString("hex");
  const containerServer = containerServerSetting(process.env);
  // Uncapped unless SANDBOX_MAX_CONTAINERS says otherwise: every test takes fresh sandbox IDs,
  // hundreds in a run, and none of their containers has sat idle long enough to end before the
  // run does; wrangler.jsonc's max_instances (20) would hold the suite up. The cap itself is
  // tested on the capped host below.
  const maxContainers = process.env.SANDBOX_MAX_CONTAINERS ? await maxContainersSetting(process.env) : undefined;
  const host = await startHost({ root, token, port: 0, containerServer, maxContainers });
  project.provide("sandboxHost", { url: host.url, token, root, containerServer: containerServer.kind });
  const cappedRoot = await mkdtemp(join(tmpdir(), "artifact-sandbox-capped-"));
  const capped = await startHost({ root: cappedRoot, token, port: 0, containerServer, maxContainers: 1, log: () => {} });
  project.provide("cappedSandboxHost", { url: capped.url, token });
  return async () => {
    await Promise.all([host.close(), capped.close()]);
    await rm(root, { recursive: true, force: true });
    await rm(cappedRoot, { recursive: true, force: true });
  };
}
