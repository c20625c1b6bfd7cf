/**
 * Workspace persistence across container restarts: what a sleeping or replaced Cloudflare
 * container would lose (its disk) comes back from the snapshot the Sandbox Durable Object saved
 * to R2; a workspace that survived is never overwritten by an older snapshot.
 */

import { env, runInDurableObject } from "cloudflare:test";
import { getSandbox } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { r2Keys, sandboxKey } from "../../storage/layout";
import { api, runJob, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";

async function stdoutOf(sandboxId: string, command: string): Promise<string> {
  const job = await runJob(sandboxId, { type: "run", command });
  const stderr = await (await api(`/v1/jobs/${job.id}/stderr`)).text();
  expect(job.status, `${command}: ${stderr}`).toBe("succeeded");
  return (await api(`/v1/jobs/${job.id}/stdout`)).text();
}

describe("workspace persistence", () => {
  it("restores the saved workspace into a fresh container, and keeps a workspace that survived", async () => {
    const sandboxId = uniqueSandbox("persist");
    const sandbox = getSandbox(env.Sandbox, sandboxKey(TEST_TENANT, sandboxId));
    await stdoutOf(sandboxId, "echo v1 > kept.txt && mkdir -p deep/dir && printf '\\001\\002' > deep/dir/bin && echo h > .hidden");

    // What happens before a container goes to sleep.
    expect(await sandbox.saveWorkspace()).toBeGreaterThan(0);
    expect(await env.JOB_OUTPUT.head(r2Keys.workspaceSnapshot(sandboxKey(TEST_TENANT, sandboxId)))).not.toBeNull();

    // A newer change, then a container restart that keeps the disk: the newer file wins.
    await stdoutOf(sandboxId, "echo v2 > kept.txt");
    await sandbox.destroy();
    expect(await stdoutOf(sandboxId, "cat kept.txt")).toBe("v2\n");

    // A fresh container: an empty disk (emptied, then the container replaced).
    await stdoutOf(sandboxId, "find /workspace -mindepth 1 -delete");
    await sandbox.destroy();
    expect(await stdoutOf(sandboxId, "cat kept.txt .hidden; od -An -tx1 deep/dir/bin")).toBe("v1\nh\n 01 02\n");
  });

  it("saves the workspace when the container goes to sleep", async () => {
    const sandboxId = uniqueSandbox("sleepy");
    // The job runner opens sandboxes with the default sleepAfter (10 minutes); this one sleeps sooner.
    const sandbox = getSandbox(env.Sandbox, sandboxKey(TEST_TENANT, sandboxId), { sleepAfter: "2s" });
    await sandbox.writeFile("/workspace/note.txt", "before sleep");
    const deadline = Date.now() + 25_000;
    let saved = await env.JOB_OUTPUT.head(r2Keys.workspaceSnapshot(sandboxKey(TEST_TENANT, sandboxId)));
    while (!saved && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      saved = await env.JOB_OUTPUT.head(r2Keys.workspaceSnapshot(sandboxKey(TEST_TENANT, sandboxId)));
    }
    expect(saved?.size).toBeGreaterThan(0);
  }, 30_000);

  it("keeps the container when the save before a sleep fails, and fails the next job WORKSPACE_LOST should it stop anyway", async () => {
    const sandboxId = uniqueSandbox("unsaved");
    const key = sandboxKey(TEST_TENANT, sandboxId);
    const sandbox = getSandbox(env.Sandbox, key, { sleepAfter: "2s" });
    const state = <T>(read: (state: DurableObjectState) => T | Promise<T>) =>
      runInDurableObject(env.Sandbox.get(env.Sandbox.idFromName(key)), (_instance, objectState) => read(objectState));
    const until = async (done: () => Promise<boolean>) => {
      const deadline = Date.now() + 25_000;
      while (!(await done())) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    // Its first call sets the sleep time, before the container starts.
    await sandbox.exists("/workspace");
    await stdoutOf(sandboxId, "echo v1 > kept.txt");
    await until(async () => (await env.JOB_OUTPUT.head(r2Keys.workspaceSnapshot(key))) !== null);

    // R2 refuses the workspace's put (test/setup/strictR2.js) when the container next goes to sleep.
    const refusal = `test-hooks/refuse-put/${r2Keys.workspaceSnapshot(key)}`;
    await env.JOB_OUTPUT.put(refusal, "");
    try {
      await stdoutOf(sandboxId, "echo v2 > kept.txt");
      await until(async () => (await state((objectState) => objectState.storage.get("artifact-sandbox:workspace-unsaved"))) !== undefined);
      // Past its sleep time, the container is still up.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await state((objectState) => objectState.container?.running)).toBe(true);

      // It stops anyway, its disk gone (emptied, then the container replaced).
      await stdoutOf(sandboxId, "find /workspace -mindepth 1 -delete");
      await sandbox.destroy();
      const lost = await runJob(sandboxId, { type: "run", command: "cat kept.txt" });
      expect(lost.status).toBe("failed");
      expect(lost.error?.code).toBe("WORKSPACE_LOST");
      expect(lost.error?.message).toMatch(/could not be saved.*holds the last save/);
      // Said once: the next job goes on from the older save.
      expect(await stdoutOf(sandboxId, "cat kept.txt")).toBe("v1\n");
    } finally {
      await env.JOB_OUTPUT.delete(refusal);
    }
  }, 60_000);
});
