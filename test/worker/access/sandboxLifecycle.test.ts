/** The tenant's sandboxes: listed with their activity; deleting one ends its jobs and its files. */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ENDING_STALE_MS, tenantDirectoryFor } from "../../../access/tenantDirectory";
import { JobView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

const SandboxList = z.object({ sandboxes: z.array(z.object({ sandboxId: z.string(), lastActiveAt: z.string(), expiresAt: z.string() })) });
const JobList = z.object({ jobs: z.array(JobView) });
const Deleted = z.object({ sandboxId: z.string(), deleted: z.boolean(), cancelledJobs: z.number() });

describe("sandbox lifecycle", () => {
  it("lists the tenant's sandboxes; a delete cancels their jobs, empties the workspace and the sandbox's job list, and is idempotent", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const other = await createKey(uniqueTenant("globex"));
    const written = await submitAs(key, "doomed", { type: "run", command: "echo data > kept.txt" });
    expect((await finishedAs(key, written.id)).status).toBe("succeeded");
    const running = await submitAs(key, "doomed", { type: "run", command: "sleep 30" });
    const queued = await submitAs(key, "doomed", { type: "run", command: "echo never > never.txt" });

    const listed = SandboxList.parse(await (await deployed("/v1/sandboxes", { key })).json());
    expect(listed.sandboxes.map((sandbox) => sandbox.sandboxId)).toEqual(["doomed"]);
    expect(SandboxList.parse(await (await deployed("/v1/sandboxes", { key: other.key })).json()).sandboxes).toEqual([]);

    const deleteResponse = await deployed("/v1/sandboxes/doomed", { method: "DELETE", key });
    expect(deleteResponse.status, await deleteResponse.clone().text()).toBe(200);
    const deleted = Deleted.parse(await deleteResponse.json());
    expect(deleted).toMatchObject({ deleted: true, cancelledJobs: 2 });
    expect((await finishedAs(key, running.id)).error?.code).toBe("CANCELLED");
    expect((await finishedAs(key, queued.id)).error?.code).toBe("CANCELLED");
    expect(SandboxList.parse(await (await deployed("/v1/sandboxes", { key })).json()).sandboxes).toEqual([]);
    expect(Deleted.parse(await (await deployed("/v1/sandboxes/doomed", { method: "DELETE", key })).json()).deleted).toBe(false);

    // Used again, the sandbox starts empty.
    const after = await finishedAs(key, (await submitAs(key, "doomed", { type: "run", command: "ls -A /workspace | wc -l" })).id);
    expect(after.status).toBe("succeeded");
    expect((await (await deployed(`/v1/jobs/${after.id}/stdout`, { key })).text()).trim()).toBe("0");
    // Its list starts empty too: the jobs from before the delete still open by their IDs only.
    const jobs = JobList.parse(await (await deployed("/v1/sandboxes/doomed/jobs", { key })).json()).jobs;
    expect(jobs.map((job) => job.id)).toEqual([after.id]);
    expect((await finishedAs(key, written.id)).status).toBe("succeeded");
  }, 60_000);

  it("finishes a delete that a reset of the tenant's directory cut short, instead of answering SANDBOX_BUSY for days", async () => {
    const tenant = uniqueTenant("acme");
    const { key } = await createKey(tenant);
    expect((await finishedAs(key, (await submitAs(key, "cut", { type: "run", command: "echo data > kept.txt" })).id)).status).toBe(
      "succeeded",
    );
    const running = await submitAs(key, "cut", { type: "run", command: "sleep 30" });
    while (JobView.parse(await (await deployed(`/v1/jobs/${running.id}`, { key })).json()).status !== "running") {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // The delete marks the sandbox, then waits for the running job to stop: the directory is reset then.
    // A fresh stub each time: one that saw the reset stays broken.
    const directory = () => tenantDirectoryFor(env.TENANT_DIRECTORY, tenant);
    const endingOf = () =>
      runInDurableObject(directory(), (_instance, state) =>
        z.number().parse(state.storage.sql.exec("SELECT ending FROM sandboxes WHERE sandbox_id = 'cut'").one().ending),
      );
    const deleting = deployed("/v1/sandboxes/cut", { method: "DELETE", key }).catch((error: unknown) => error);
    while ((await endingOf()) === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    await runInDurableObject(directory(), (_instance, state) => state.abort("reset mid-delete")).catch(() => undefined);
    await deleting;
    await expectError(
      await deployed("/v1/sandboxes/cut/jobs", { method: "POST", key, body: JSON.stringify({ type: "run", command: "true" }) }),
      409,
      "SANDBOX_BUSY",
    );

    // Once the marker is stale, the directory's alarm finishes the delete.
    await runInDurableObject(directory(), (_instance, state) => {
      state.storage.sql.exec("UPDATE sandboxes SET ending = ending - ? WHERE sandbox_id = 'cut'", ENDING_STALE_MS);
    });
    expect(await runDurableObjectAlarm(directory())).toBe(true);
    expect((await finishedAs(key, running.id)).error?.code).toBe("CANCELLED");
    const after = await finishedAs(key, (await submitAs(key, "cut", { type: "run", command: "ls -A /workspace | wc -l" })).id);
    expect(after.status).toBe("succeeded");
    expect((await (await deployed(`/v1/jobs/${after.id}/stdout`, { key })).text()).trim()).toBe("0");
  }, 60_000);
});
