/** Jobs past their retention are gone for clients, whatever storage still holds. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { JobRecord } from "../../schemas/job";
import { kvKeys, r2Keys } from "../../storage/layout";
import { api, expectError, runJob, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";

describe("retention", () => {
  it("answers 404 for a job whose retention has passed", async () => {
    const job = await runJob(uniqueSandbox("old"), { type: "run", command: "echo old" });
    // Wait for the finished record's KV copy, then for KV's one-write-per-second window.
    for (let i = 0; i < 60 && !(await env.LOOKUPS.get(kvKeys.job(TEST_TENANT, job.id)))?.includes('"succeeded"'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 1200));
    // Age both copies of the final record as if its retention had run out (a second after they
    // were written, as R2 and KV allow).
    const stored = await env.JOB_OUTPUT.get(r2Keys.record(TEST_TENANT, job.id));
    expect(stored).not.toBeNull();
    const expired: JobRecord = { ...JobRecord.parse(await stored?.json()), expiresAt: new Date(Date.now() - 1000).toISOString() };
    await env.JOB_OUTPUT.put(r2Keys.record(TEST_TENANT, job.id), JSON.stringify(expired));
    await env.LOOKUPS.put(kvKeys.job(TEST_TENANT, job.id), JSON.stringify(expired));
    await expectError(await api(`/v1/jobs/${job.id}`), 404, "JOB_NOT_FOUND");
    await expectError(await api(`/v1/jobs/${job.id}/stdout`), 404, "JOB_NOT_FOUND");
  });

  it("stamps each job with its expiry, RETENTION_DAYS after submission", async () => {
    const job = await runJob(uniqueSandbox("fresh"), { type: "run", command: "true" });
    const days = (Date.parse(job.expiresAt) - Date.parse(job.createdAt)) / (24 * 60 * 60 * 1000);
    expect(days).toBe(Number(env.RETENTION_DAYS));
  });
});
