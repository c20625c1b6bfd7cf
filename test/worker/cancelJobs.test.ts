/** `POST /v1/jobs/{id}/cancel`: queued jobs never run; running ones have their command ended. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { JobView } from "../../schemas/job";
import { r2Keys } from "../../storage/layout";
import { api, expectError, getJob, runJob, submit, uniqueSandbox, waitForJob } from "./client";
import { inCoordinator, TEST_TENANT } from "./support/jobs";

function cancel(jobId: string): Promise<Response> {
  return api(`/v1/jobs/${jobId}/cancel`, { method: "POST" });
}

describe("cancelling jobs", () => {
  it("ends a running command and frees its sandbox for the next job", async () => {
    const sandbox = uniqueSandbox("cancel-run");
    const job = await submit(sandbox, { type: "run", command: "echo started; sleep 30", timeoutMs: 60_000 });
    // Running, and its first line written (live output so far).
    for (;;) {
      const output = await api(`/v1/jobs/${job.id}/stdout`);
      if (output.status === 200 && (await output.text()) === "started\n") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const response = await cancel(job.id);
    expect(response.status).toBe(202);
    expect(JobView.parse(await response.json()).status).toBe("running");

    const ended = await waitForJob(job.id);
    expect(ended.status).toBe("failed");
    expect(ended.error?.code).toBe("CANCELLED");
    expect(ended.durationMs).toBeLessThan(20_000);
    // What it wrote before the cancel is kept, as a CI log should be.
    expect(ended.tries, JSON.stringify(ended)).toHaveLength(1);
    expect(await (await api(`/v1/jobs/${job.id}/stdout`)).text()).toBe("started\n");
    // Had the 30 s sleep survived, this job would wait behind it and the test would time out.
    const next = await runJob(sandbox, { type: "run", command: "echo next" });
    expect(next.status).toBe("succeeded");
  });

  it("cancels a queued job so that it never runs", async () => {
    const sandbox = uniqueSandbox("cancel-queued");
    const first = await submit(sandbox, { type: "run", command: "sleep 2" });
    const second = await submit(sandbox, { type: "run", command: "touch ran.txt" });
    const response = await cancel(second.id);
    expect(response.status).toBe(200);
    expect(JobView.parse(await response.json())).toMatchObject({ status: "failed", error: { code: "CANCELLED" } });

    expect((await waitForJob(first.id)).status).toBe("succeeded");
    const check = await runJob(sandbox, { type: "run", command: "test -e ran.txt" });
    expect(check.exitCode).toBe(1);
    expect((await getJob(second.id)).attempts).toBe(0);
  });

  it("drops a cancelled queued job's request (it may hold secrets), wherever it was kept", async () => {
    const sandbox = uniqueSandbox("cancel-stored");
    const first = await submit(sandbox, { type: "run", command: "sleep 2" });
    // A small request is kept in the coordinator's table; one too large for a queue message in R2.
    const small = await submit(sandbox, { type: "run", command: "true", env: { SECRET: "s" } });
    const large = await submit(sandbox, { type: "run", command: "true", env: { SECRET: "s".repeat(70_000) } });
    const heldRequest = (jobId: string) =>
      inCoordinator(sandbox, "UPDATE job_state SET request = request WHERE job_id = ? AND request IS NOT NULL", jobId);
    expect(await heldRequest(small.id)).toBe(1);
    expect(await env.JOB_OUTPUT.head(r2Keys.request(TEST_TENANT, large.id))).not.toBeNull();
    expect((await cancel(small.id)).status).toBe(200);
    expect((await cancel(large.id)).status).toBe(200);
    expect(await heldRequest(small.id)).toBe(0);
    // What is in R2 goes once R2's one write per second to its key allows.
    const leftovers = [r2Keys.request(TEST_TENANT, large.id)];
    const remaining = async () => (await Promise.all(leftovers.map((key) => env.JOB_OUTPUT.head(key)))).filter((head) => head !== null);
    await expect.poll(remaining, { timeout: 20_000, interval: 100 }).toEqual([]);
    expect((await waitForJob(first.id)).status).toBe("succeeded");
  });

  it("answers 409 for a finished job and 404 for an unknown one", async () => {
    const done = await runJob(uniqueSandbox("cancel-done"), { type: "run", command: "true" });
    await expectError(await cancel(done.id), 409, "JOB_FINISHED");
    await expectError(await cancel("01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "JOB_NOT_FOUND");
  });
});
