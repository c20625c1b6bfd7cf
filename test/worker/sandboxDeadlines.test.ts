/**
 * Deadlines belong to the control plane: a job's command runs as root beside its container's
 * server, so it can stop or trace every process there, the server included. Whatever it does,
 * its job ends (by its timeout, or as a sandbox that stopped responding), once, with what it wrote
 * until then, its container is destroyed, and the sandbox's next job runs on a fresh one. The answer timeout is 8 s here
 * (SANDBOX_ANSWER_TIMEOUT_SECONDS in vitest.config.ts); deployed it is 20 s.
 */
import { describe, expect, it } from "vitest";
import type { JobView } from "../../schemas/job";
import { api, runJob, uniqueSandbox } from "./client";
import { readEvents, textOf } from "./support/logEvents";

/** Every process but pid 1 and itself, attached with ptrace (which stops each one), then waits. */
const PTRACE_EVERYTHING = [
  "perl -e '",
  "my $nr = `uname -m` =~ /aarch64/ ? 117 : 101;",
  'opendir(my $d, "/proc") or die;',
  "for my $p (grep { /^\\d+$/ && $_ != $$ && $_ != 1 } readdir $d) { syscall($nr, 16, $p + 0, 0, 0) }",
  "sleep 1000'",
].join(" ");

/** Ended by this side once, not tried again: a command that did this would do it again. */
function expectFailedOnce(job: JobView): void {
  expect(job).toMatchObject({ status: "failed", attempts: 1, exitCode: null });
  expect(job.error?.code).toBe("SANDBOX_ERROR");
}

describe("deadlines a command cannot hold off", () => {
  it("ends a job that stops every process in its sandbox, and runs the next job on a fresh container", async () => {
    const sandbox = uniqueSandbox("stop-all");
    const started = Date.now();
    // The pause lets "before" reach the live log before everything stops.
    const stopped = await runJob(sandbox, { type: "run", command: "echo before; sleep 2; kill -STOP -1; sleep 1000", timeoutMs: 120_000 });
    expect(stopped.status).toBe("failed");
    expect(stopped.error?.code).toBe("SANDBOX_ERROR");
    expect(stopped.error?.message).toContain("stopped responding");
    expect(stopped.attempts).toBe(1);
    // What the command wrote before it stopped everything is kept, and a follower from the start reads it.
    expect(await (await api(`/v1/jobs/${stopped.id}/stdout`)).text()).toBe("before\n");
    const events = await readEvents(await api(`/v1/jobs/${stopped.id}/logs`));
    expect(events.filter((event) => event.event === "gap")).toEqual([]);
    expect(textOf(events, "stdout")).toBe("before\n");
    const next = await runJob(sandbox, { type: "run", command: "echo fresh" });
    expect(next.status).toBe("succeeded");
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it("fails a job that kills every process in its sandbox once, keeping what it wrote, and runs the next job on a fresh container", async () => {
    const sandbox = uniqueSandbox("kill-all");
    const started = Date.now();
    const killed = await runJob(sandbox, { type: "run", command: "echo before; sleep 2; kill -9 -1; sleep 1000", timeoutMs: 120_000 });
    // Not run again: a command that kills its container's server would do it again on every attempt.
    expectFailedOnce(killed);
    expect(killed.error?.message).toContain("kill -9 -1");
    expect(await (await api(`/v1/jobs/${killed.id}/stdout`)).text()).toBe("before\n");
    const next = await runJob(sandbox, { type: "run", command: "echo fresh" });
    expect(next.status).toBe("succeeded");
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it("fails a job whose command kills every process as its first act once, though the start's answer never came", async () => {
    const sandbox = uniqueSandbox("kill-first");
    const killed = await runJob(sandbox, { type: "run", command: "kill -9 -1; sleep 1000", timeoutMs: 120_000 });
    expectFailedOnce(killed);
    expect(killed.error?.message).toContain("its container was replaced meanwhile");
    expect((await runJob(sandbox, { type: "run", command: "echo fresh" })).status).toBe("succeeded");
  }, 90_000);

  it("fails a job whose command deletes its output files as they are made once, saying so, and runs the next job on a fresh container", async () => {
    const sandbox = uniqueSandbox("delete-runs");
    // Bursts of output too big for a poll's answer wait in gzip files under the runs' directory, which the loop deletes.
    const command = [
      'shopt -s nullglob; ( while :; do for f in /tmp/.artifact-sandbox-runs/*.gz; do rm -f "$f"; done; done ) &',
      "for i in $(seq 1 30); do seq 1 100000; sleep 0.3; done",
    ].join("\n");
    const lost = await runJob(sandbox, { type: "run", command, timeoutMs: 60_000 });
    expectFailedOnce(lost);
    expect(lost.error?.message).toContain("reading its output from the sandbox failed 3 times in a row");
    expect(lost.error?.message).toContain("/tmp/.artifact-sandbox-runs");
    expect((await runJob(sandbox, { type: "run", command: "echo fresh" })).status).toBe("succeeded");
  }, 90_000);

  it("fails a job whose command deletes its run's files once, keeping what it wrote, and ends the command", async () => {
    const sandbox = uniqueSandbox("delete-run");
    const lost = await runJob(sandbox, {
      type: "run",
      command: "echo before; sleep 2; rm -rf /tmp/.artifact-sandbox-runs; sleep 1000",
      timeoutMs: 120_000,
    });
    expect(lost).toMatchObject({ status: "failed", attempts: 1, exitCode: null });
    expect(lost.error?.message).toContain("the files of the command's run were deleted from the sandbox");
    expect(await (await api(`/v1/jobs/${lost.id}/stdout`)).text()).toBe("before\n");
    // Its container went with its command: nothing of it is left running. The count from /proc is
    // shown to see a live process (this job's own sleep 999) before it is trusted to see none.
    const count = [
      'sleep 999 & count() { local n=0 c; for c in /proc/[0-9]*/cmdline; do [ "$(tr -d \'\\0\' < "$c" 2>/dev/null)" = "$1" ] && n=$((n + 1)); done; echo "$1 $n"; }',
      "count sleep999; count sleep1000; kill %1",
    ].join("\n");
    const next = await runJob(sandbox, { type: "run", command: count });
    expect(next).toMatchObject({ status: "succeeded" });
    expect(await (await api(`/v1/jobs/${next.id}/stdout`)).text()).toBe("sleep999 1\nsleep1000 0\n");
  }, 90_000);

  it("ends a job that ptrace-attaches every process in its sandbox", async () => {
    const sandbox = uniqueSandbox("ptrace-all");
    const traced = await runJob(sandbox, { type: "run", command: PTRACE_EVERYTHING, timeoutMs: 120_000 });
    expect(traced.status).toBe("failed");
    expect(traced.error?.message).toContain("stopped responding");
    expect((await runJob(sandbox, { type: "run", command: "echo fresh" })).status).toBe("succeeded");
  }, 90_000);

  it("reports a job whose sandbox stopped answering before its deadline passed as timed out", async () => {
    const sandbox = uniqueSandbox("stop-late");
    const job = await runJob(sandbox, { type: "run", command: "echo working; sleep 1; kill -STOP -1; sleep 1000", timeoutMs: 3_000 });
    expect(job.status).toBe("timed_out");
    expect(job.error?.code).toBe("TIMEOUT");
    expect((await runJob(sandbox, { type: "run", command: "true" })).status).toBe("succeeded");
  }, 90_000);
});
