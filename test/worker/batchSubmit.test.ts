/** `POST /v1/jobs`: a CI pipeline's whole batch in one request. */
import { describe, expect, it } from "vitest";
import { BatchView } from "../../schemas/job";
import { api, expectError, listJobs, postJson, runJob, uniqueSandbox, waitForJob } from "./client";

describe("batch submission", () => {
  it("queues 100 jobs over 256 KB in total, and each sandbox runs its jobs in array order", async () => {
    const sandboxes = [uniqueSandbox("batch-a"), uniqueSandbox("batch-b"), uniqueSandbox("batch-c"), uniqueSandbox("batch-d")];
    // ~5 KB per job, so the messages cannot all go in one sendBatch call (256 KB, 100 messages).
    const padding = "#".repeat(5000);
    const jobs = Array.from({ length: 100 }, (_, index) => ({
      sandboxId: sandboxes[index % sandboxes.length],
      job: { type: "run", command: `echo ${index} >> order.txt # ${padding}` },
    }));
    const response = await postJson("/v1/jobs", { jobs });
    expect(response.status).toBe(202);
    const batch = BatchView.parse(await response.json());
    expect(batch.jobs).toHaveLength(100);
    expect(batch.jobs.every((job) => job.status === "queued")).toBe(true);
    expect(batch.jobs.map((job) => job.sandboxId)).toEqual(jobs.map((job) => job.sandboxId));

    const finished = await Promise.all(batch.jobs.map((job) => waitForJob(job.id)));
    expect(finished.every((job) => job.status === "succeeded")).toBe(true);
    for (const [offset, sandboxId] of sandboxes.entries()) {
      const read = await runJob(sandboxId, { type: "run", command: "cat order.txt" });
      const expected = jobs.map((_, index) => index).filter((index) => index % sandboxes.length === offset);
      expect(await (await api(`/v1/jobs/${read.id}/stdout`)).text()).toBe(expected.map((index) => `${index}\n`).join(""));
    }
  });

  it("rejects the whole batch when one job is invalid, naming it, and submits nothing", async () => {
    const sandboxId = uniqueSandbox("batch-bad");
    const jobs = [
      { sandboxId, job: { type: "run", command: "true" } },
      { sandboxId, job: { type: "run", command: "   " } },
    ];
    const message = await expectError(await postJson("/v1/jobs", { jobs }), 400, "INVALID_REQUEST");
    expect(message).toContain("jobs.1.job.command");
    expect((await listJobs(sandboxId)).jobs).toEqual([]);
  });

  it("tells a single job posted to the batch route where single jobs go", async () => {
    // `POST /v1/sandboxes/../jobs` arrives here too: URLs resolve the `..` before sending.
    const message = await expectError(await postJson("/v1/jobs", { type: "run", command: "true" }), 400, "INVALID_REQUEST");
    expect(message).toContain("a single job goes to POST /v1/sandboxes/{sandboxId}/jobs");
  });

  it("rejects an empty batch and one over 100 jobs", async () => {
    await expectError(await postJson("/v1/jobs", { jobs: [] }), 400, "INVALID_REQUEST");
    const tooMany = Array.from({ length: 101 }, () => ({ sandboxId: "x", job: { type: "run", command: "true" } }));
    expect(await expectError(await postJson("/v1/jobs", { jobs: tooMany }), 400, "INVALID_REQUEST")).toContain("At most 100");
  });
});
