/** The tenant's sandboxes: listed with their activity; deleting one ends its jobs and its files. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

const SandboxList = z.object({ sandboxes: z.array(z.object({ sandboxId: z.string(), lastActiveAt: z.string(), expiresAt: z.string() })) });
const Deleted = z.object({ sandboxId: z.string(), deleted: z.boolean(), cancelledJobs: z.number() });

describe("sandbox lifecycle", () => {
  it("lists the tenant's sandboxes; a delete cancels their jobs, empties the workspace, and is idempotent", async () => {
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
  }, 60_000);
});
