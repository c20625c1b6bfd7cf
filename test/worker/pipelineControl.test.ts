/**
 * Control flow in a batch: `when: always | on_failure`, `allowFailure`, and `matrix`.
 */
import { describe, expect, it } from "vitest";
import { BatchView } from "../../schemas/job";
import { api, expectError, postJson, uniqueSandbox } from "./client";
import { byName, finishedBatch, run, statuses, submitPipeline } from "./support/batches";

describe("when and allowFailure", () => {
  it("runs past an allowed failure, runs `always` jobs, skips `on_failure` ones when nothing failed, and the batch succeeds", async () => {
    const sandboxId = uniqueSandbox("flow-ok");
    const batch = await finishedBatch(
      (
        await submitPipeline([
          { name: "build", sandboxId, job: run("echo built") },
          { name: "lint", sandboxId, needs: ["build"], allowFailure: true, job: run("exit 4") },
          { name: "deploy", sandboxId, needs: ["lint"], job: run("echo deployed") },
          { name: "report", sandboxId, needs: ["lint"], when: "always", job: run("echo report") },
          { name: "cleanup", sandboxId, needs: ["deploy"], when: "on_failure", job: run("echo cleanup") },
        ])
      ).batchId,
    );
    expect(statuses(batch)).toEqual({ build: "succeeded", lint: "failed", deploy: "succeeded", report: "succeeded", cleanup: "skipped" });
    const jobs = byName(batch);
    expect(jobs.lint?.allowFailure).toBe(true);
    expect(jobs.cleanup?.error?.code).toBe("WHEN_NOT_MET");
    expect(jobs.cleanup?.startedAt).toBeNull();
    expect(batch.status).toBe("succeeded");
  });

  it("after a failure runs `always` and `on_failure` jobs (even behind a skipped one) and skips the rest; the batch fails", async () => {
    const app = uniqueSandbox("flow-fail");
    const other = uniqueSandbox("flow-other");
    const batch = await finishedBatch(
      (
        await submitPipeline([
          { name: "test", sandboxId: app, job: run("echo failing; exit 2") },
          { name: "package", sandboxId: app, needs: ["test"], job: run("echo never") },
          { name: "notify", sandboxId: other, needs: ["package"], when: "on_failure", job: run("echo notified") },
          { name: "report", sandboxId: other, needs: ["test"], when: "always", job: run("echo reported") },
        ])
      ).batchId,
    );
    expect(statuses(batch)).toEqual({ test: "failed", package: "skipped", notify: "succeeded", report: "succeeded" });
    const jobs = byName(batch);
    expect(await (await api(`/v1/jobs/${jobs.notify?.id}/stdout`)).text()).toBe("notified\n");
    expect(Date.parse(jobs.report?.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(jobs.test?.finishedAt ?? ""));
    expect(batch.status).toBe("failed");
  });

  it("refuses an on_failure job that needs nothing", async () => {
    const response = await postJson("/v1/jobs", { jobs: [{ name: "x", sandboxId: "s", when: "on_failure", job: run("true") }] });
    expect(await expectError(response, 400, "INVALID_REQUEST")).toContain("on_failure");
  });
});

describe("matrix", () => {
  it("expands a job over its values as env vars, names each, and a dependent needs every expansion", async () => {
    const sandboxId = uniqueSandbox("matrix");
    const batch = await finishedBatch(
      (
        await submitPipeline([
          { name: "test", sandboxId, matrix: { NODE: ["18", "20"], OS: ["linux/x64"] }, job: run('echo "$NODE on $OS" >> runs.txt') },
          { name: "summary", sandboxId, needs: ["test"], job: run("sort runs.txt") },
        ])
      ).batchId,
    );
    // The "/" is no name character: it becomes "_".
    expect(statuses(batch)).toEqual({ "test-18-linux_x64": "succeeded", "test-20-linux_x64": "succeeded", summary: "succeeded" });
    const jobs = byName(batch);
    expect(jobs.summary?.needs.sort()).toEqual([jobs["test-18-linux_x64"]?.id, jobs["test-20-linux_x64"]?.id].sort());
    expect(jobs["test-18-linux_x64"]?.request).toMatchObject({ envKeys: ["NODE", "OS"] });
    expect(await (await api(`/v1/jobs/${jobs.summary?.id}/stdout`)).text()).toBe("18 on linux/x64\n20 on linux/x64\n");
  });

  it("refuses a matrix over 100 jobs, and inputs from a matrix job by its plain name", async () => {
    const values = Array.from({ length: 11 }, (_, index) => String(index));
    const big = await postJson("/v1/jobs", { jobs: [{ name: "m", sandboxId: "s", matrix: { A: values, B: values }, job: run("true") }] });
    expect(await expectError(big, 400, "INVALID_REQUEST")).toContain("100");
    const ambiguous = await postJson("/v1/jobs", {
      jobs: [
        { name: "m", sandboxId: "s", matrix: { A: ["1", "2"] }, job: run("true", { artifacts: ["x"] }) },
        { name: "use", sandboxId: "s", job: run("true", { inputs: [{ from: "m" }] }) },
      ],
    });
    expect(await expectError(ambiguous, 400, "INVALID_REQUEST")).toContain("m-1");
  });

  it("refuses with 413 a matrix whose copies of the job's stdin add up past the request limit, and stores nothing", async () => {
    const sandboxId = uniqueSandbox("matrix-stdin");
    const stdin = "x".repeat(4 * 1024 * 1024);
    const copies = Array.from({ length: 9 }, (_, index) => String(index));
    const refused = await postJson("/v1/jobs", { jobs: [{ name: "m", sandboxId, matrix: { N: copies }, job: run("wc -c", { stdin }) }] });
    expect(await expectError(refused, 413, "BODY_TOO_LARGE")).toContain("file job");
    const listed = await (await api(`/v1/sandboxes/${sandboxId}/jobs`)).json();
    expect(listed).toMatchObject({ jobs: [] });
    // Under the limit, each expansion gets the stdin whole.
    const batch = await finishedBatch(
      (await submitPipeline([{ name: "m", sandboxId, matrix: { N: ["1", "2"] }, job: run("wc -c", { stdin }) }])).batchId,
    );
    expect(statuses(batch)).toEqual({ "m-1": "succeeded", "m-2": "succeeded" });
    expect((await (await api(`/v1/jobs/${byName(batch)["m-2"]?.id}/stdout`)).text()).trim()).toBe(String(stdin.length));
  });
});

describe("rerun", () => {
  it("runs the failed and skipped jobs again as a new batch, with what needs them, taking artifacts from the jobs that succeeded", async () => {
    const sandboxId = uniqueSandbox("rerun");
    const user = uniqueSandbox("rerun-use");
    const first = await finishedBatch(
      (
        await submitPipeline([
          { name: "build", sandboxId, job: run("mkdir -p dist && echo v1 > dist/app.txt && echo built", { artifacts: ["dist/**"] }) },
          // Fails the first time only: the flag file is left in the sandbox's workspace.
          { name: "test", sandboxId: user, needs: ["build"], job: run("if [ -f tried ]; then echo passed; else touch tried; exit 1; fi") },
          {
            name: "package",
            sandboxId: user,
            needs: ["test"],
            job: run("cat in/dist/app.txt", { inputs: [{ from: "build", artifacts: ["dist/**"], path: "/workspace/in" }] }),
          },
          { name: "report", sandboxId: user, needs: ["package"], when: "always", job: run("echo report") },
        ])
      ).batchId,
    );
    expect(statuses(first)).toEqual({ build: "succeeded", test: "failed", package: "skipped", report: "succeeded" });
    await expectError(await api(`/v1/batches/${first.batchId}/rerun?failed=nope`, { method: "POST" }), 400, "INVALID_REQUEST");

    const response = await api(`/v1/batches/${first.batchId}/rerun?failed=true`, { method: "POST" });
    expect(response.status, await response.clone().text()).toBe(202);
    const rerun = BatchView.parse(await response.json());
    expect(rerun.batchId).not.toBe(first.batchId);
    const second = await finishedBatch(rerun.batchId);
    expect(statuses(second)).toEqual({ test: "succeeded", package: "succeeded", report: "succeeded" });
    const jobs = byName(second);
    const build = byName(first).build;
    // The package job took the first batch's build artifacts, by that job's ID.
    expect(jobs.package?.request).toMatchObject({ inputs: [{ from: build?.id }] });
    expect(jobs.package?.needs).toEqual([jobs.test?.id, build?.id].filter((id) => id !== undefined));
    expect(await (await api(`/v1/jobs/${jobs.package?.id}/stdout`)).text()).toBe("v1\n");
    expect(second.status).toBe("succeeded");

    await expectError(await api(`/v1/batches/${second.batchId}/rerun?failed=true`, { method: "POST" }), 409, "NOTHING_TO_RERUN");

    // Without ?failed, every job of the batch runs again.
    const all = BatchView.parse(await (await api(`/v1/batches/${second.batchId}/rerun`, { method: "POST" })).json());
    expect(statuses(await finishedBatch(all.batchId))).toEqual({ test: "succeeded", package: "succeeded", report: "succeeded" });
  });

  it("refuses to run a batch again while it is still running", async () => {
    const submitted = await submitPipeline([{ name: "slow", sandboxId: uniqueSandbox("rerun-busy"), job: run("sleep 20") }]);
    await expectError(await api(`/v1/batches/${submitted.batchId}/rerun`, { method: "POST" }), 409, "JOB_NOT_FINISHED");
    expect((await api(`/v1/batches/${submitted.batchId}/cancel`, { method: "POST" })).status).toBe(200);
  });
});
