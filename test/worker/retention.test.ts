/** Jobs past their retention are gone for clients, whatever storage still holds. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../schemas/job";
import { JobStore } from "../../storage/jobStore";
import { kvKeys } from "../../storage/layout";
import { api, expectError, runJob, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";

describe("retention", () => {
  it("answers 404 for a job whose retention has passed", async () => {
    const job = await runJob(uniqueSandbox("old"), { type: "run", command: "echo old" });
    // Wait for the finished record's KV copy, then for KV's one-write-per-second window.
    for (let i = 0; i < 60 && !(await env.JOB_STATUS.get(kvKeys.job(TEST_TENANT, job.id)))?.includes('"succeeded"'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 1200));
    // Age both copies of the record as if its retention had run out.
    const store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, 60, TEST_TENANT);
    const version = await store.getVersioned(job.id);
    expect(version).toBeDefined();
    if (!version) return;
    const expired: JobRecord = { ...version.record, expiresAt: new Date(Date.now() - 1000).toISOString() };
    await store.replace(version, expired);
    await store.cacheFinished(expired);
    await expectError(await api(`/v1/jobs/${job.id}`), 404, "JOB_NOT_FOUND");
    await expectError(await api(`/v1/jobs/${job.id}/stdout`), 404, "JOB_NOT_FOUND");
  });

  it("stamps each job with its expiry, RETENTION_DAYS after submission", async () => {
    const job = await runJob(uniqueSandbox("fresh"), { type: "run", command: "true" });
    const days = (Date.parse(job.expiresAt) - Date.parse(job.createdAt)) / (24 * 60 * 60 * 1000);
    expect(days).toBe(Number(env.RETENTION_DAYS));
  });
});
