/**
 * Pipelines in one batch: `name` and `needs` across sandboxes. A job starts only after what it
 * needs has succeeded; when one fails or is cancelled, everything that needs it is skipped.
 */
import { describe, expect, it } from "vitest";
import { BatchView, type JobView } from "../../schemas/job";
import { api, expectError, getJob, postJson, runJob, uniqueSandbox } from "./client";

async function submitPipeline(jobs: unknown[]): Promise<BatchView> {
  const response = await postJson("/v1/jobs", { jobs });
  expect(response.status, await response.clone().text()).toBe(202);
  return BatchView.parse(await response.json());
}

async function finishedBatch(batchId: string): Promise<BatchView> {
  for (;;) {
    const batch = BatchView.parse(await (await api(`/v1/batches/${batchId}?wait=20`)).json());
    if (batch.status === "succeeded" || batch.status === "failed") return batch;
  }
}

function byName(batch: BatchView): Record<string, JobView> {
  return Object.fromEntries(batch.jobs.map((job) => [job.name ?? job.id, job]));
}

const run = (command: string) => ({ type: "run", command });

describe("pipelines", () => {
  it("skips everything below a failing job, transitively, while an independent branch succeeds", async () => {
    const app = uniqueSandbox("pipe-app");
    const docs = uniqueSandbox("pipe-docs");
    const submitted = await submitPipeline([
      { name: "build", sandboxId: app, job: run("echo built > built.txt") },
      { name: "test", sandboxId: app, needs: ["build"], job: run("test -f built.txt && exit 3") },
      { name: "coverage", sandboxId: app, needs: ["test"], job: run("echo coverage") },
      { name: "report", sandboxId: docs, needs: ["coverage"], job: run("echo report") },
      { name: "lint", sandboxId: docs, job: run("echo lint") },
      { name: "site", sandboxId: docs, needs: ["lint", "build"], job: run("echo site") },
    ]);
    expect(submitted.status).toBe("queued");
    const batch = await finishedBatch(submitted.batchId);
    const jobs = byName(batch);
    expect(Object.fromEntries(Object.entries(jobs).map(([name, job]) => [name, job.status]))).toEqual({
      build: "succeeded",
      test: "failed",
      coverage: "skipped",
      report: "skipped",
      lint: "succeeded",
      site: "succeeded",
    });
    expect(jobs.test?.exitCode).toBe(3);
    expect(jobs.coverage?.error?.code).toBe("SKIPPED");
    expect(jobs.coverage?.error?.message).toContain("test");
    expect(jobs.report?.startedAt).toBeNull();
    expect(batch.status).toBe("failed");
  });

  it("starts a job only after what it needs has finished, across sandboxes and whatever the array order", async () => {
    const first = uniqueSandbox("pipe-first");
    const second = uniqueSandbox("pipe-second");
    const batch = await finishedBatch(
      (
        await submitPipeline([
          // Listed first, in the same sandbox as what it needs: it still runs after it.
          { name: "package", sandboxId: first, needs: ["compile", "fetch"], job: run("cat out.txt") },
          { name: "compile", sandboxId: first, job: run("sleep 1; echo compiled > out.txt") },
          { name: "fetch", sandboxId: second, job: run("sleep 1.5") },
        ])
      ).batchId,
    );
    const jobs = byName(batch);
    expect(batch.status).toBe("succeeded");
    for (const need of [jobs.compile, jobs.fetch]) {
      expect(Date.parse(jobs.package?.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(need?.finishedAt ?? ""));
    }
    expect(await (await api(`/v1/jobs/${jobs.package?.id}/stdout`)).text()).toBe("compiled\n");
  });

  it("says a job waits for the jobs it needs while they run, naming those not finished yet", async () => {
    const submitted = await submitPipeline([
      { name: "slow", sandboxId: uniqueSandbox("pipe-slow"), job: run("sleep 6") },
      { name: "quick", sandboxId: uniqueSandbox("pipe-quick"), job: run("true") },
      { name: "after", sandboxId: uniqueSandbox("pipe-after"), needs: ["slow", "quick"], job: run("true") },
    ]);
    const { slow, after } = byName(submitted);
    // Once quick has finished, only slow is named.
    await expect
      .poll(async () => (await getJob(after?.id ?? "")).waitingReason, { timeout: 20_000 })
      .toBe(`Waiting for the jobs it needs to finish (${slow?.id})`);
    const finished = byName(await finishedBatch(submitted.batchId));
    expect(finished.after).toMatchObject({ status: "succeeded", waitingReason: null });
  });

  it("refuses unknown names and cycles, naming them, and submits nothing", async () => {
    const sandboxId = uniqueSandbox("pipe-bad");
    const unknown = await postJson("/v1/jobs", { jobs: [{ name: "a", sandboxId, needs: ["nope"], job: run("true") }] });
    expect(await expectError(unknown, 400, "INVALID_REQUEST")).toContain("nope");
    const cycle = await postJson("/v1/jobs", {
      jobs: [
        { name: "a", sandboxId, needs: ["b"], job: run("true") },
        { name: "b", sandboxId, needs: ["a"], job: run("true") },
        { name: "c", sandboxId, job: run("true") },
      ],
    });
    const message = await expectError(cycle, 400, "INVALID_REQUEST");
    expect(message).toContain("cycle");
    expect(message).toContain("a, b");
    // Every problem of the names in one answer, not one per try.
    const several = await postJson("/v1/jobs", {
      jobs: [
        { name: "d", sandboxId, job: run("true") },
        { name: "d", sandboxId, job: run("true") },
        { name: "e", sandboxId, needs: ["nope"], job: run("true") },
        { name: "f", sandboxId, when: "on_failure", job: run("true") },
      ],
    });
    const all = await expectError(several, 400, "INVALID_REQUEST");
    expect(all).toContain("repeated: d");
    expect(all).toContain("needs names no job of this batch: nope");
    expect(all).toContain("Job f runs on_failure but needs no job");
    const listed = await (await api(`/v1/sandboxes/${sandboxId}/jobs`)).json();
    expect(listed).toMatchObject({ jobs: [] });
  });

  it("cancels what has not finished when the batch is cancelled; what needed it is skipped", async () => {
    const sandboxId = uniqueSandbox("pipe-cancel");
    const submitted = await submitPipeline([
      { name: "long", sandboxId, job: run("sleep 30") },
      { name: "after", sandboxId, needs: ["long"], job: run("echo never") },
    ]);
    const cancel = await api(`/v1/batches/${submitted.batchId}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(200);
    const jobs = byName(await finishedBatch(submitted.batchId));
    expect(jobs.long?.error?.code).toBe("CANCELLED");
    expect(jobs.after?.status === "skipped" || jobs.after?.error?.code === "CANCELLED").toBe(true);
    expect(jobs.after?.startedAt).toBeNull();
    await expectError(await api("/v1/batches/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "JOB_NOT_FOUND");
  });

  it("passes artifacts between sandboxes: by name in a batch, by job ID later", async () => {
    const builder = uniqueSandbox("pipe-build");
    const user = uniqueSandbox("pipe-use");
    const batch = await finishedBatch(
      (
        await submitPipeline([
          {
            name: "build",
            sandboxId: builder,
            job: {
              type: "run",
              command:
                "mkdir -p dist && echo app > dist/app.js && echo notes > dist/notes.md && printf '#!/bin/sh\\necho ran\\n' > dist/run.sh && chmod 755 dist/run.sh",
              artifacts: ["dist/**"],
            },
          },
          {
            name: "use",
            sandboxId: user,
            job: {
              type: "run",
              command: "cat in/dist/app.js; ls in/dist",
              inputs: [{ from: "build", artifacts: ["dist/*.js"], path: "/workspace/in" }],
            },
          },
        ])
      ).batchId,
    );
    const jobs = byName(batch);
    expect(batch.status).toBe("succeeded");
    expect(jobs.use?.needs).toEqual([jobs.build?.id]);
    expect(await (await api(`/v1/jobs/${jobs.use?.id}/stdout`)).text()).toBe("app\napp.js\n");

    const later = await runJob(uniqueSandbox("pipe-later"), {
      type: "run",
      command: "cat dist/notes.md",
      inputs: [{ from: jobs.build?.id }],
    });
    expect(later.status).toBe("succeeded");
    expect(await (await api(`/v1/jobs/${later.id}/stdout`)).text()).toBe("notes\n");

    const unknown = await postJson("/v1/jobs", {
      jobs: [{ sandboxId: user, job: { type: "run", command: "true", inputs: [{ from: "nope" }] } }],
    });
    expect(await expectError(unknown, 400, "INVALID_REQUEST")).toContain("nope");
    // A job ID that names no job (a typo) is refused at submit, not skipped later.
    const missingId = "01KZZZZZZZZZZZZZZZZZZZZZZZ";
    const typo = await postJson("/v1/jobs", {
      jobs: [{ sandboxId: user, job: { type: "run", command: "true", inputs: [{ from: missingId }, { from: jobs.build?.id }] } }],
    });
    const message = await expectError(typo, 400, "INVALID_REQUEST");
    expect(message).toContain(`no job ${missingId}`);
    expect(message).not.toContain(String(jobs.build?.id));
  });
});
