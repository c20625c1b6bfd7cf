/**
 * The scripts that run a job's command as a child of its own (sandbox/childCommand.ts), run
 * here with the machine's own bash, as a container's exec runs them, with a runs directory of this
 * file's own in place of the container's (another test run on this machine has its own; only the
 * read-link test touches the machine's /tmp, with links of its own naming). The
 * Worker tests run the same scripts through the SDK against both container servers; these pin
 * down the details.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { CappedOutput } from "../../sandbox/cappedOutput";
import {
  discardScript,
  endScript,
  type PollReport,
  type PollRequest,
  parsePollReport,
  pollScript,
  READ_LINK_PREFIX,
  runPrefix,
  type StreamSlice,
  startScript,
} from "../../sandbox/childCommand";
import { shellQuote } from "../../sandbox/shell";

/** Keep everything (no skipped middle) and take up to 32 KiB per stream inline, unless a test says otherwise. */
const KEEP_ALL = 2 ** 30;
const INLINE = 32 * 1024;

/** Where the scripts keep their runs, as they name it, and where this file's runs really are. */
const SCRIPT_RUNS = dirname(runPrefix("any"));
const RUNS = mkdtempSync(join(tmpdir(), "child-command-runs-"));
afterAll(() => rm(RUNS, { recursive: true, force: true }));

/** A path the scripts print, on this machine. */
function onHost(path: string): string {
  return path.startsWith(`${SCRIPT_RUNS}/`) ? join(RUNS, path.slice(SCRIPT_RUNS.length + 1)) : path;
}

/** A poll that wants both streams whole from their start (a test reads no more than a line or two). */
function fromTheStart(waitMs: number): PollRequest {
  return { stdout: { at: 0, headRoom: KEEP_ALL }, stderr: { at: 0, headRoom: KEEP_ALL }, tailBytes: 0, inlineBytes: INLINE, waitMs };
}

/** The names of a run's files left in the runs directory. */
function runFiles(runId: string): string[] {
  return readdirSync(RUNS).filter((name) => name.startsWith(`${runId}.`));
}

/** Sizes of a run's output files: emptied once the run has ended and been read. */
function outputSizes(runId: string): number[] {
  return ["stdout", "stderr"].map((name) => statSync(onHost(`${runPrefix(runId)}.${name}`)).size);
}

/** Runs a script with bash in a mount namespace where RUNS is the scripts' runs directory. */
function exec(script: string): string {
  const result = spawnSync("bwrap", ["--dev-bind", "/", "/", "--bind", RUNS, SCRIPT_RUNS, "bash", "-c", script], { encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

type Finished = {
  runId: string;
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Bytes of stdout left out between its head and tail. */
  dropped: number;
  /** Polls whose output came in a gzip file. */
  streamedSlices: number;
  /** Bytes of stdout and stderr that came out of the sandbox (skipped ones do not). */
  transferredBytes: number;
  /** The poll that saw the end, and its answer. */
  finalRequest: PollRequest;
  finalReport: PollReport;
};

/** A slice's bytes: from the answer, or from its gzip file (as the adapter streams it). */
function sliceBytes(slice: StreamSlice): Buffer {
  return slice.data.kind === "inline"
    ? Buffer.from(slice.data.bytes)
    : Buffer.concat(slice.data.paths.map((path) => gunzipSync(readFileSync(onHost(path)))));
}

/**
 * Starts a command and polls until it has ended and every byte is read, as the adapter does,
 * keeping the head and tail of each stream within `maxBytes` in the adapter's own CappedOutput.
 */
async function runToEnd(
  command: string,
  options: { cwd?: string; env?: Record<string, string>; inline?: number; maxBytes?: number } = {},
): Promise<Finished> {
  const runId = crypto.randomUUID();
  const cwd = options.cwd ?? (await mkdtemp(join(tmpdir(), "child-command-")));
  const at = { stdout: 0, stderr: 0 };
  const kept = { stdout: new CappedOutput(options.maxBytes ?? KEEP_ALL), stderr: new CappedOutput(options.maxBytes ?? KEEP_ALL) };
  let streamedSlices = 0;
  let transferredBytes = 0;
  const request = (waitMs: number): PollRequest => ({
    stdout: { at: at.stdout, headRoom: kept.stdout.headRoom() },
    stderr: { at: at.stderr, headRoom: kept.stderr.headRoom() },
    tailBytes: kept.stdout.tailSize,
    inlineBytes: options.inline ?? INLINE,
    waitMs,
  });
  let asked = request(1000);
  let report = parsePollReport(exec(startScript(runId, { command, cwd, env: options.env ?? {} }, asked)));
  for (;;) {
    if (report.kind !== "report") throw new Error("the run vanished");
    let streamed = false;
    for (const name of ["stdout", "stderr"] as const) {
      const slice = report[name];
      const bytes = sliceBytes(slice);
      expect(bytes.length).toBe(slice.headBytes + slice.tailBytes);
      transferredBytes += bytes.length;
      kept[name].push(bytes.subarray(0, slice.headBytes));
      kept[name].skip(slice.skippedBytes);
      kept[name].push(bytes.subarray(slice.headBytes));
      at[name] += slice.headBytes + slice.skippedBytes + slice.tailBytes;
      if (slice.data.kind === "gzip") streamed = true;
    }
    if (streamed) streamedSlices++;
    if (report.exitCode !== null) {
      expect(at).toEqual({ stdout: report.stdoutSize, stderr: report.stderrSize });
      const [stdout, stderr] = [kept.stdout.result(), kept.stderr.result()];
      return {
        runId,
        exitCode: report.exitCode,
        stdout: Buffer.from(stdout.bytes),
        stderr: Buffer.from(stderr.bytes),
        dropped: stdout.droppedBytes,
        streamedSlices,
        transferredBytes,
        finalRequest: asked,
        finalReport: report,
      };
    }
    asked = request(500);
    report = parsePollReport(exec(pollScript(runId, asked)));
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
    // Read whole, so emptied in the sandbox at once: output can be large, and the files' removal waits for a batch.
    expect(outputSizes(run.runId)).toEqual([0, 0]);
    // The final poll again (its first answer lost on the way) gets the same answer, never the
    // emptied outputs; another poll gets none.
    expect(parsePollReport(exec(pollScript(run.runId, run.finalRequest)))).toEqual(run.finalReport);
    const other = { ...run.finalRequest, stdout: { ...run.finalRequest.stdout, at: run.finalRequest.stdout.at + 1 } };
    expect(parsePollReport(exec(pollScript(run.runId, other)))).toEqual({ kind: "missing" });
  });

  it("reads fast output whole, streaming what is over the inline size from gzip files", async () => {
    const run = await runToEnd("seq 1 200000");
    const lines = run.stdout.toString().trimEnd().split("\n");
    expect(lines).toHaveLength(200000);
    expect(lines.at(-1)).toBe("200000");
    expect(run.streamedSlices).toBeGreaterThan(0);
    // The final poll again answers the same end, its gzip files still there to read.
    const repeated = parsePollReport(exec(pollScript(run.runId, run.finalRequest)));
    expect(repeated).toEqual(run.finalReport);
    if (repeated.kind !== "report") throw new Error("the ended run's answer was not kept");
    const bytes = sliceBytes(repeated.stdout);
    expect(run.stdout.subarray(run.stdout.length - bytes.length).equals(bytes)).toBe(true);
  });

  it("streams any bytes exactly (NUL, invalid UTF-8, \\r) and skips the middle past the head unread", async () => {
    // 256 KiB in which every byte value occurs, in no order a compressor could guess.
    const whole = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 2654435761) >>> 24));
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    await writeFile(join(cwd, "data.bin"), whole);
    const all = await runToEnd("cat data.bin", { cwd });
    expect(all.stdout.equals(whole)).toBe(true);
    expect(all.streamedSlices).toBeGreaterThan(0);
    const capped = await runToEnd("cat data.bin", { cwd, maxBytes: 40_000 });
    const marker = Buffer.from(`\n[... ${whole.length - 40_000} bytes of output dropped here ...]\n`);
    expect(capped.stdout.equals(Buffer.concat([whole.subarray(0, 20_000), marker, whole.subarray(whole.length - 20_000)]))).toBe(true);
    expect(capped.dropped).toBe(whole.length - 40_000);
    // The middle never left the sandbox: only the kept head and tail were read.
    expect(capped.transferredBytes).toBe(40_000);
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

  it("kills what the command left running in its session once it exits", async () => {
    const run = await runToEnd("sleep 30 & echo $!");
    const pid = Number(run.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it("kills what the command started in a session of its own once it exits, by the run's marker in its environment", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const run = await runToEnd(
      "setsid -f bash -c 'echo $$ > escaped; exec sleep 30' < /dev/null; until [ -s escaped ]; do sleep 0.05; done; cat escaped",
      {
        cwd,
      },
    );
    const pid = Number(run.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it("ends a running command's whole session on request, and the run then reports its end", async () => {
    const runId = crypto.randomUUID();
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const command =
      "setsid -f bash -c 'echo $$ > escaped.pid; exec sleep 61' < /dev/null; until [ -s escaped.pid ]; do sleep 0.05; done; sleep 60 & echo $!; sleep 60";
    const started = parsePollReport(exec(startScript(runId, { command, cwd, env: {} }, fromTheStart(300))));
    expect(started.kind === "report" && started.exitCode).toBe(null);
    exec(endScript(runId));
    let report: PollReport = started;
    for (let i = 0; i < 20 && (report.kind !== "report" || report.exitCode === null); i++) {
      report = parsePollReport(exec(pollScript(runId, fromTheStart(500))));
    }
    expect(report.kind === "report" && report.exitCode).toBe(137);
    const background = report.kind === "report" ? Number(sliceBytes(report.stdout).toString().trim()) : 0;
    expect(alive(background)).toBe(false);
    // The one that left the session too (found by the run's marker).
    const escaped = Number(readFileSync(join(cwd, "escaped.pid"), "utf8").trim());
    expect(escaped).toBeGreaterThan(0);
    expect(alive(escaped)).toBe(false);
    expect(outputSizes(runId)).toEqual([0, 0]);
  });

  it("reports exactly the bytes it sends while a process that left the command's session still writes", async () => {
    // The writer stops by itself after 3 s, should the test fail before it is killed.
    const finished = await runToEnd("setsid bash -c 'while [ $SECONDS -lt 3 ]; do printf y; done' < /dev/null & echo $! >&2; echo done");
    const writer = Number(finished.stderr.toString().trim());
    try {
      // runToEnd checks every slice's byte count against what the poll reported.
      expect(finished.exitCode).toBe(0);
      expect(finished.stdout.toString()).toMatch(/^y*done\ny*$/);
    } finally {
      try {
        process.kill(writer, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  });

  it("makes the wake-up FIFO again when a job replaced it with a plain file", async () => {
    expect((await runToEnd("true")).exitCode).toBe(0);
    await rm(join(RUNS, ".tick"));
    await writeFile(join(RUNS, ".tick"), "x");
    const finished = await runToEnd("sleep 0.3; echo after");
    expect(finished).toMatchObject({ exitCode: 0 });
    expect(finished.stdout.toString()).toBe("after\n");
    expect(lstatSync(join(RUNS, ".tick")).isFIFO()).toBe(true);
  });

  it("removes, at a command's start, links a cancelled file read left in /tmp", async () => {
    const link = `${READ_LINK_PREFIX}${crypto.randomUUID()}.gz`;
    await symlink("/etc/hostname", link);
    const finished = await runToEnd("true");
    expect(finished.exitCode).toBe(0);
    expect(existsSync(link)).toBe(false);
  });

  it("ends a command whose pid is on record before its session exists (a deadline right after the start)", async () => {
    // A child that has put its pid on record but not yet made its session: a process in another's.
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const runId = crypto.randomUUID();
    await writeFile(onHost(`${runPrefix(runId)}.pid`), String(child.pid));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    exec(endScript(runId));
    expect(await exited).toBeDefined();
    await rm(onHost(`${runPrefix(runId)}.pid`));
  });

  it("discards a run given up on: its command is killed and its files are gone", async () => {
    const runId = crypto.randomUUID();
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const request = fromTheStart(300);
    const started = parsePollReport(exec(startScript(runId, { command: "echo $$; sleep 60", cwd, env: {} }, request)));
    const shell = started.kind === "report" ? Number(sliceBytes(started.stdout).toString().trim()) : 0;
    expect(alive(shell)).toBe(true);
    expect(runFiles(runId)).toContain(`${runId}.stdout`);
    exec(discardScript(runId));
    expect(alive(shell)).toBe(false);
    expect(runFiles(runId)).toEqual([]);
  });

  it("ends a supervisor's whole process group, a child that has not made its session yet too", async () => {
    // A process group led by the recorded pid, with a member that is not the leader and not in a
    // session named after it: a supervisor and its child before the child's setsid.
    const group = spawnSync(
      "bash",
      ["-c", "set -m; (sleep 30 & echo $!; sleep 30) > $0 2> /dev/null & echo $!", join(RUNS, "group-child")],
      {
        encoding: "utf8",
      },
    );
    const leader = Number(group.stdout.trim());
    await new Promise((resolve) => setTimeout(resolve, 200));
    const member = Number(readFileSync(join(RUNS, "group-child"), "utf8").trim());
    expect([alive(leader), alive(member)]).toEqual([true, true]);
    const runId = crypto.randomUUID();
    await writeFile(onHost(`${runPrefix(runId)}.supervisor`), String(leader));
    exec(discardScript(runId));
    expect([alive(leader), alive(member)]).toEqual([false, false]);
    await rm(join(RUNS, "group-child"));
  });

  it("removes ended runs' files in batches at a start, never a running one's", async () => {
    const running = crypto.randomUUID();
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const request = fromTheStart(0);
    exec(
      startScript(running, { command: "until [ -e go ] || [ $SECONDS -ge 30 ]; do sleep 0.05; done; echo late", cwd, env: {} }, request),
    );
    const ended = () => readdirSync(RUNS).filter((name) => name.endsWith(".exit")).length;
    for (let i = 0; i < 20; i++) {
      expect((await runToEnd("true")).exitCode).toBe(0);
      // At most the batch's size of ended runs, and the run just ended.
      expect(ended()).toBeLessThanOrEqual(17);
    }
    expect(ended()).toBeLessThan(20);
    await writeFile(join(cwd, "go"), "");
    let report = parsePollReport(exec(pollScript(running, { ...request, waitMs: 3000 })));
    for (let i = 0; i < 10 && report.kind === "report" && report.exitCode === null; i++) {
      report = parsePollReport(exec(pollScript(running, { ...request, waitMs: 1000 })));
    }
    expect(report.kind === "report" && report.exitCode).toBe(0);
    expect(report.kind === "report" && sliceBytes(report.stdout).toString()).toBe("late\n");
  });
});

describe("a job's command when the container's disk is full", () => {
  it("still reports the command's end and every byte it wrote, the same again when asked again", async () => {
    // One bwrap for the whole run, its runs directory a 1 MiB tmpfs: 700 KB of output that does
    // not compress leaves room for neither the gzip files nor the kept final answer.
    const runId = crypto.randomUUID();
    const cwd = await mkdtemp(join(tmpdir(), "child-command-"));
    const data = randomBytes(525_000).toString("base64");
    await writeFile(join(cwd, "data.b64"), data);
    const asked = fromTheStart(1000);
    const start = startScript(runId, { command: "cat data.b64; exit 5", cwd, env: {} }, asked);
    const poll = pollScript(runId, asked);
    const driver = [
      `bash -c ${shellQuote(start)}`,
      "echo as-next",
      `for i in 1 2 3 4 5 6 7 8 9 10; do bash -c ${shellQuote(poll)}; echo as-next; done`,
    ].join("\n");
    const result = spawnSync(
      "bwrap",
      ["--dev-bind", "/", "/", "--size", String(1024 * 1024), "--tmpfs", SCRIPT_RUNS, "bash", "-c", driver],
      {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const answers = result.stdout
      .split("as-next\n")
      .filter((answer) => answer !== "")
      .map(parsePollReport);
    const ends = answers.filter((report) => report.kind === "report" && report.exitCode !== null);
    // The end, and the same end again at every later poll with the same offsets: never lost, never "missing".
    expect(ends.length).toBeGreaterThanOrEqual(2);
    for (const end of ends) {
      if (end.kind !== "report") throw new Error("unreachable");
      expect(end.exitCode).toBe(5);
      expect(end.stdout.data.kind).toBe("inline");
      expect(sliceBytes(end.stdout).toString()).toBe(data);
    }
    expect(answers.at(-1)).toEqual(ends.at(-1));
  });
});
