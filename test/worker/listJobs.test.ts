/** `GET /v1/sandboxes/{id}/jobs`: newest first, filtered by status, paged by cursor. */
import { describe, expect, it } from "vitest";
import { createKey, submitAs, uniqueTenant } from "./access/tenants";
import { listJobs, runJob, uniqueSandbox } from "./client";

describe("listing a sandbox's jobs", () => {
  it("lists newest first, pages with a cursor, filters by status and shows no other tenant's jobs", async () => {
    const sandbox = uniqueSandbox("list");
    const ids: string[] = [];
    for (const command of ["true", "false", "true", "exit 2", "true"]) {
      ids.push((await runJob(sandbox, { type: "run", command })).id);
    }
    // Another tenant's job in a sandbox of the same ID.
    const other = await createKey(uniqueTenant("other"));
    const foreign = await submitAs(other.key, sandbox, { type: "run", command: "true" });

    const all = await listJobs(sandbox);
    expect(all.jobs.map((job) => job.id)).toEqual([...ids].reverse());
    expect(all.jobs.map((job) => job.id)).not.toContain(foreign.id);
    expect(all.nextCursor).toBeNull();

    const first = await listJobs(sandbox, "?limit=2");
    expect(first.jobs.map((job) => job.id)).toEqual([ids[4], ids[3]]);
    const second = await listJobs(sandbox, `?limit=2&cursor=${first.nextCursor}`);
    expect(second.jobs.map((job) => job.id)).toEqual([ids[2], ids[1]]);
    const third = await listJobs(sandbox, `?limit=2&cursor=${second.nextCursor}`);
    expect(third.jobs.map((job) => job.id)).toEqual([ids[0]]);
    expect(third.nextCursor).toBeNull();

    const failed = await listJobs(sandbox, "?status=failed");
    expect(failed.jobs.map((job) => job.id)).toEqual([ids[3], ids[1]]);
    expect(failed.jobs.every((job) => job.status === "failed")).toBe(true);
  });

  it("lists nothing for a sandbox that never ran a job", async () => {
    expect(await listJobs(uniqueSandbox("empty"))).toEqual({ jobs: [], nextCursor: null });
  });
});
