/**
 * Vitest global setup: starts a real local container host (bubblewrap) for the Worker tests and
 * hands its URL and token to the Worker's bindings through `provide`.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startHost } from "../../container/local/host";

declare module "vitest" {
  export interface ProvidedContext {
    sandboxHost: { url: string; token: string; root: string };
  }
}

export default async function setup(project: TestProject) {
  const root = await mkdtemp(join(tmpdir(), "artifact-sandbox-test-"));
  const token = randomBytes(24).toString("hex");
  const host = await startHost({ root, token, port: 0 });
  project.provide("sandboxHost", { url: host.url, token, root });
  return async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
  };
}
