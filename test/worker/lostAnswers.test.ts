/**
 * A round trip whose answer is lost on the way back (the container did the work; the network or
 * its server failed before the answer arrived), or that fails for a while, against a real
 * container through the SDK's own client: the run asks again and ends as the command did, having
 * run it once. The faults are
 * injected between ChildCommandRun and the real SDK stub, which is the one thing here that is not
 * the deployed path.
 */
import { env } from "cloudflare:test";
import { getSandbox } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { ChildCommandRun, type ExecStub } from "../../sandbox/childCommandRun";
import { SandboxOperationError } from "../../sandbox/port";
import { uniqueSandbox } from "./client";

/** A real sandbox whose exec requests fail, never reaching the container, while `failing` says so. */
function flakySandbox(prefix: string, failing: (script: string) => boolean) {
  const sandbox = getSandbox(env.Sandbox, uniqueSandbox(prefix));
  const stub: ExecStub = {
    async exec(script, options) {
      if (failing(script)) throw new Error("Network connection lost.");
      return sandbox.exec(script, options);
    },
    readFileStream: (path) => sandbox.readFileStream(path),
  };
  return { sandbox, stub };
}

/** A real sandbox whose exec answers are lost (thrown away after the container ran the script) when `loseAnswer` says so. */
function lossySandbox(prefix: string, loseAnswer: (script: string, stdout: string) => boolean) {
  const sandbox = getSandbox(env.Sandbox, uniqueSandbox(prefix));
  const scripts: string[] = [];
  const stub: ExecStub = {
    async exec(script, options) {
      scripts.push(script);
      const answer = await sandbox.exec(script, options);
      if (loseAnswer(script, answer.stdout)) throw new Error("The connection to the container was reset");
      return answer;
    },
    readFileStream: (path) => sandbox.readFileStream(path),
  };
  return { sandbox, stub, scripts };
}

function run(stub: ExecStub, command: string) {
  return new ChildCommandRun(
    stub,
    crypto.randomUUID(),
    { command, cwd: "/workspace", env: {}, timeoutMs: 30_000 },
    { maxOutputBytes: 1024 * 1024, answerTimeoutMs: 10_000, abandonContainer: async () => {}, containerReplaced: async () => false },
  ).run();
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("a run whose answer is lost on the way back", () => {
  it("rides out round trips that fail for seconds while the command runs", async () => {
    let failingUntil = 0;
    let failed = 0;
    const { stub } = flakySandbox("flaky-polls", (script) => {
      // From the first poll after the start on, for 3 s: more than three failed round trips in a row.
      if (script.includes("set -m")) return false;
      failingUntil ||= Date.now() + 3_000;
      const fails = Date.now() < failingUntil;
      if (fails) failed++;
      return fails;
    });
    const result = await run(stub, "echo before; sleep 5; echo after");
    expect(failed).toBeGreaterThan(3);
    expect(result.exitCode).toBe(0);
    expect(text(result.stdout.bytes)).toBe("before\nafter\n");
  }, 60_000);

  it("leaves a job whose start never reached the container to be tried again, its command never run", async () => {
    let starts = 0;
    const { sandbox, stub } = flakySandbox("start-unsent", (script) => script.includes("set -m") && starts++ === 0);
    const failure = await run(stub, "echo ran > /workspace/ran.txt").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SandboxOperationError);
    expect(failure).toMatchObject({ retryable: true });
    expect(String(failure)).toContain("The sandbox has no run of the command");
    expect((await sandbox.exec("test -e /workspace/ran.txt || echo absent", { timeout: 10_000 })).stdout.trim()).toBe("absent");
  }, 60_000);

  it("finds a command whose start's answer was lost running, and never runs it twice", async () => {
    let lost = 0;
    const { sandbox, stub } = lossySandbox("lost-start", (script) => script.includes("set -m") && lost++ === 0);
    const result = await run(stub, "echo once >> /workspace/runs.txt; sleep 1; echo done");
    expect(lost).toBe(1);
    expect(result.exitCode).toBe(0);
    expect(text(result.stdout.bytes)).toBe("done\n");
    expect((await sandbox.readFile("/workspace/runs.txt")).content).toBe("once\n");
  }, 60_000);

  it("gets a lost final answer again, the exit status and every byte with it", async () => {
    let finalAnswers = 0;
    const { stub, scripts } = lossySandbox("lost-end", (_, stdout) => /^as-status \d+ \d+ \d+$/m.test(stdout) && finalAnswers++ === 0);
    // Well past the start's first wait (1 s), so the end comes in a poll of its own; over the inline size, so in gzip files.
    const result = await run(stub, "sleep 3; head -c 100000 /dev/zero | tr '\\0' x; printf 'a\\0b'; exit 4");
    // The first lost, the second (the same poll again) taken.
    expect(finalAnswers).toBe(2);
    expect(result.exitCode).toBe(4);
    expect(result.stdout.bytes.byteLength).toBe(100_003);
    expect([...result.stdout.bytes.subarray(100_000)]).toEqual([0x61, 0, 0x62]);
    // The same poll was asked twice: the lost answer's, then its repetition.
    expect(scripts.at(-1)).toBe(scripts.at(-2));
  }, 60_000);
});
