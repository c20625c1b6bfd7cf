/**
 * The scripts that run a job's command as a child of its own (sandbox/childCommand.ts), run
 * here with the machine's own bash, as a container's exec runs them. The Worker tests run the
 * same scripts through the SDK against both container servers; these pin down the details.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { endScript, type PollReport, parsePollReport, pollScript, runDirectory, startScript } from "../../sandbox/childCommand";

const SLICE = 1024 * 1024;

function exec(script: string): string {
  const result = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  expect(result.status).toBe(0);
  return result.stdout;
}

type Finished = { exitCode: number; stdout: Buffer; stderr: Buffer };

/** Starts a command and polls until it has ended and every byte is read, as the adapter does. */
async function runToEnd(command: string, options: { cwd?: string; env?: Record<string, string>; slice?: number } = {}): Promise<Finished> {
  const runId = crypto.randomUUID();
  const cwd = options.cwd ?? (await mkdtemp(join(tmpdir(), "child-command-")));
  const slice = options.slice ?? SLICE;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let report = parsePollReport(exec(startScript(runId, { command, cwd, env: options.env ?? {} }, 1000, slice)));
  for (;;) {
    if (report.kind !== "report") throw new Error("the run vanished");
    out.push(Buffer.from(report.stdout));
    err.push(Buffer.from(report.stderr));
    const stdout = Buffer.concat(out);
    const stderr = Buffer.concat(err);
    if (report.exitCode !== null && stdout.length >= report.stdoutSize && stderr.length >= report.stderrSize) {
      return { exitCode: report.exitCode, stdout, stderr };
    }
    report = parsePollReport(exec(pollScript(runId, { stdout: stdout.length, stderr: stderr.length }, 500, slice)));
  }
}

/** Running, or stopped: a killed process may stay a zombie until whoever adopted it reaps it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

describe("a job's command as a child process", () => {
  it("reports exit N and a kill of $$ as the command's own, not the shell's", async () => {
    expect((await runToEnd("echo x; exit 3")).exitCode).toBe(3);
    expect((await runToEnd("kill -SEGV $$")).exitCode).toBe(139);
  });

  it("keeps stdout and stderr byte for byte: NUL, invalid UTF-8, \\r, no added newline", async () => {
    const run = await runToEnd("printf 'a\\0b\\377'; printf 'x\\ry' >&2");
    expect([...run.stdout]).toEqual([0x61, 0, 0x62, 0xff]);
    expect(run.stderr.toString("latin1")).toBe("x\ry");
  });

  it("reads fast output whole, in slices smaller than the output", async () => {
    const run = await runToEnd("seq 1 200000", { slice: 64 * 1024 });
    const lines = run.stdout.toString().trimEnd().split("\n");
    expect(lines).toHaveLength(200000);
    expect(lines.at(-1)).toBe("200000");
  });

  it("passes env values exactly and runs the command with bash even if the job's PATH is useless", async () => {
    const value = `it's "$HOME" \\ \n and more`;
    const run = await runToEnd('printf %s "$TRICKY"; echo; echo "$PATH"', { env: { TRICKY: value, PATH: "/nowhere" } });
    expect(run.stdout.toString()).toBe(`${value}\n/nowhere\n`);
  });

  it("creates a missing cwd, and fails like cd when it cannot", async () => {
    const base = await mkdtemp(join(tmpdir(), "child-command-"));
    expect((await runToEnd("pwd", { cwd: `${base}/a/b` })).stdout.toString()).toBe(`${base}/a/b\n`);
    const refused = await runToEnd("pwd", { cwd: "/proc/1/nope" });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr.toString()).toContain("Failed to change directory");
  });

  it("kills what the command left running in its session once it exits, and removes its run directory", async () => {
    const run = await runToEnd("sleep 30 & echo $!");
    const pid = Number(run.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it("ends a running command's whole session on request, and the run then reports its end", async () => {
    const runId = crypto.randomUUID();
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const started = parsePollReport(exec(startScript(runId, { command: "sleep 60 & echo $!; sleep 60", cwd, env: {} }, 300, SLICE)));
    expect(started.kind === "report" && started.exitCode).toBe(null);
    exec(endScript(runId));
    let report: PollReport = started;
    for (let i = 0; i < 20 && (report.kind !== "report" || report.exitCode === null); i++) {
      report = parsePollReport(exec(pollScript(runId, { stdout: 0, stderr: 0 }, 500, SLICE)));
    }
    expect(report.kind === "report" && report.exitCode).toBe(137);
    const background = report.kind === "report" ? Number(new TextDecoder().decode(report.stdout).trim()) : 0;
    expect(alive(background)).toBe(false);
    expect(existsSync(runDirectory(runId))).toBe(false);
  });
});
