/** Run jobs whose command is killed by a signal, and run jobs that retry a failing command. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { JobRecord, newJobRecord, RunJobRequest } from "../../schemas/job";
import { api, expectError, postJson, runJob, submit, uniqueSandbox, waitForJob } from "./client";
import { readEvents, textOf } from "./support/logEvents";

async function stdoutOf(jobId: string): Promise<string> {
  return (await api(`/v1/jobs/${jobId}/stdout`)).text();
}

/** Fails until it has run `n` times in this sandbox, counting its runs in the workspace. */
function failsUntilRun(n: number): string {
  return `c=$(cat count.txt 2>/dev/null || echo 0); c=$((c + 1)); echo $c > count.txt; echo "try $c"; [ $c -ge ${n} ] || { echo "fail $c" >&2; exit 1; }`;
}

describe("commands killed by a signal", () => {
  it("reports a segfault as KILLED_BY_SIGNAL with exit code 139 and the signal's name", async () => {
    const job = await runJob(uniqueSandbox("segv"), { type: "run", command: "echo before; sh -c 'kill -SEGV $$'" });
    expect(job.status).toBe("failed");
    expect(job.exitCode).toBe(139);
    expect(job.signal).toBe("SIGSEGV");
    expect(job.error).toEqual({ code: "KILLED_BY_SIGNAL", message: "Command was killed by SIGSEGV (exit code 139)" });
    expect(job.tries).toEqual([{ exitCode: 139, signal: "SIGSEGV", durationMs: expect.any(Number), timedOut: false }]);
    expect(await stdoutOf(job.id)).toBe("before\n");
  });

  it("reports a plain non-zero exit with no signal", async () => {
    const job = await runJob(uniqueSandbox("exit"), { type: "run", command: "exit 2" });
    expect(job).toMatchObject({ exitCode: 2, signal: null, error: { code: "NONZERO_EXIT" } });
  });
});

describe("retries", () => {
  it("runs a flaky command again in the same sandbox until it succeeds, and keeps every try", async () => {
    const job = await runJob(uniqueSandbox("flaky"), { type: "run", command: failsUntilRun(3), retries: 2, artifacts: ["count.txt"] });
    expect(job.status).toBe("succeeded");
    expect(job.exitCode).toBe(0);
    expect(job.error).toBeNull();
    expect(job.attempts).toBe(1);
    expect(job.request).toMatchObject({ retries: 2 });
    expect(job.tries.map((t) => t.exitCode)).toEqual([1, 1, 0]);
    expect(job.tries.every((t) => t.signal === null && !t.timedOut && t.durationMs >= 0)).toBe(true);
    // Outputs and artifacts are the last try's.
    expect(await stdoutOf(job.id)).toBe("try 3\n");
    expect(job.stderr).toMatchObject({ size: 0 });
    const count = await api(new URL(job.artifacts[0]?.url ?? "").pathname);
    expect(await count.text()).toBe("3\n");
  });

  it("fails after its last retry, reporting the last try", async () => {
    const job = await runJob(uniqueSandbox("always-fails"), {
      type: "run",
      command: "echo run >> runs.txt; echo failing >&2; exit 7",
      retries: 1,
      artifacts: ["runs.txt"],
    });
    expect(job.status).toBe("failed");
    expect(job.exitCode).toBe(7);
    expect(job.error).toEqual({ code: "NONZERO_EXIT", message: "Command exited with code 7 (the last of 2 tries)" });
    expect(job.tries.map((t) => t.exitCode)).toEqual([7, 7]);
    expect(await (await api(`/v1/jobs/${job.id}/stderr`)).text()).toBe("failing\n");
    const log = await api(new URL(job.artifacts[0]?.url ?? "").pathname);
    expect(await log.text()).toBe("run\nrun\n");
  });

  it("retries a command killed by a signal", async () => {
    // The first try crashes, the second finds its marker and succeeds.
    const command = "if [ -e crashed ]; then echo ok; else touch crashed; sh -c 'kill -SEGV $$'; fi";
    const job = await runJob(uniqueSandbox("segv-retry"), { type: "run", command, retries: 1 });
    expect(job.status).toBe("succeeded");
    expect(job.tries.map((t) => [t.exitCode, t.signal])).toEqual([
      [139, "SIGSEGV"],
      [0, null],
    ]);
    expect(job.signal).toBeNull();
  });

  it("does not retry a timeout", async () => {
    const job = await runJob(uniqueSandbox("slow-retry"), { type: "run", command: "sleep 30", timeoutMs: 500, retries: 2 });
    expect(job.status).toBe("timed_out");
    expect(job.error?.code).toBe("TIMEOUT");
    expect(job.tries).toEqual([{ exitCode: null, signal: null, durationMs: expect.any(Number), timedOut: true }]);
  });

  it("stops retrying when the job is cancelled", async () => {
    const sandbox = uniqueSandbox("cancel-retry");
    // The first try fails at once; the second says so, sleeps, and is cancelled.
    const job = await submit(sandbox, {
      type: "run",
      command: "echo run >> runs.txt; if [ $(wc -l < runs.txt) -ge 2 ]; then echo second-try; sleep 30; fi; exit 1",
      retries: 5,
    });
    await readEvents(await api(`/v1/jobs/${job.id}/logs`), (events) => textOf(events, "stdout").includes("second-try"));
    expect((await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" })).status).toBe(202);

    const ended = await waitForJob(job.id);
    expect(ended.error?.code).toBe("CANCELLED");
    const runs = await runJob(sandbox, { type: "run", command: "wc -l < runs.txt" });
    expect((await stdoutOf(runs.id)).trim()).toBe("2");
  });

  it.each([
    ["more than 5 retries", { retries: 6 }, /retries is at most 5/],
    ["a fractional retry count", { retries: 1.5 }, /retries/],
    ["tries that cannot all fit in 14 minutes", { retries: 1, timeoutMs: 420_001 }, /\(retries \+ 1\) \* timeoutMs is at most 840000/],
  ])("rejects %s with a 400", async (_label, fields, pattern) => {
    const response = await postJson(`/v1/sandboxes/${uniqueSandbox("bad-retries")}/jobs`, { type: "run", command: "true", ...fields });
    expect(await expectError(response, 400, "INVALID_REQUEST")).toMatch(pattern);
  });

  it("accepts retries whose tries all fit in 14 minutes", async () => {
    const job = await submit(uniqueSandbox("fits"), { type: "run", command: "true", retries: 1, timeoutMs: 420_000 });
    expect((await waitForJob(job.id)).tries).toHaveLength(1);
  });

  it("documents retries, signal and tries in the OpenAPI document", async () => {
    const Schema = z.object({ properties: z.record(z.string(), z.unknown()).optional() });
    const Doc = z.object({ components: z.object({ schemas: z.record(z.string(), Schema) }) });
    const { schemas } = Doc.parse(await (await api("/v1/openapi.json")).json()).components;
    expect(schemas.RunJobRequest?.properties?.retries).toMatchObject({ type: "integer", maximum: 5 });
    expect(Object.keys(schemas.Job?.properties ?? {})).toEqual(expect.arrayContaining(["signal", "tries"]));
  });

  it("reads a record stored before retries existed", () => {
    const request = RunJobRequest.parse({ type: "run", command: "true" });
    const current = newJobRecord("01JOLDRECORD0000000000000", { tenant: "local", sandboxId: "old" }, request, Date.now(), 60);
    const { signal: _signal, tries: _tries, request: summary, ...stored } = current;
    if (summary.type !== "run") throw new Error("expected a run job's summary");
    const { retries: _retries, ...storedRequest } = summary;
    expect(JobRecord.parse({ ...stored, request: storedRequest })).toMatchObject({ signal: null, tries: [], request: { retries: 0 } });
  });
});
