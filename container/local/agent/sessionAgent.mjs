// Runs inside a sandbox's persistent bubblewrap session (plain JavaScript: the sandbox has only
// the host's node binary, no TypeScript loader). Reads one JSON request per line on stdin, runs
// each command with /bin/sh -c, and answers one JSON line on stdout. After every command it
// kills whatever the command left behind, so background processes never outlive their job.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { constants } from "node:os";
import { createInterface } from "node:readline";

const SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** SIGKILLs every process in this pid namespace except init (pid 1) and this agent. */
function killLeftovers() {
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === 1 || pid === process.pid) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function capped(limit) {
  const chunks = [];
  let kept = 0;
  return {
    truncated: false,
    push(chunk) {
      const room = limit - kept;
      if (chunk.length > room) this.truncated = true;
      if (room <= 0) return;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(part);
      kept += part.length;
    },
    base64() {
      return Buffer.concat(chunks).toString("base64");
    },
  };
}

function run(request) {
  return new Promise((resolve) => {
    const started = performance.now();
    const stdout = capped(request.maxOutputBytes);
    const stderr = capped(request.maxOutputBytes);
    const child = spawn("/bin/sh", ["-c", request.command], {
      cwd: request.cwd,
      env: { PATH: SANDBOX_PATH, HOME: "/workspace", LANG: "C.UTF-8", ...request.env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    let timedOut = false;
    let exitCode = null;
    const timer = setTimeout(() => {
      timedOut = true;
      killLeftovers();
    }, request.timeoutMs);
    child.stdout.on("data", (chunk) => stdout.push(chunk));
    child.stderr.on("data", (chunk) => stderr.push(chunk));
    child.stdin.on("error", () => {});
    child.stdin.end(request.stdin ?? "");
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({
        id: request.id,
        exitCode: 127,
        timedOut: false,
        durationMs: 0,
        stdout: "",
        stderr: Buffer.from(String(error)).toString("base64"),
        stdoutTruncated: false,
        stderrTruncated: false,
      });
    });
    // The shell is done: end whatever it started, so nothing holds the output pipes open.
    child.on("exit", (code, signal) => {
      exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : null);
      killLeftovers();
    });
    child.on("close", () => {
      clearTimeout(timer);
      resolve({
        id: request.id,
        exitCode: timedOut ? null : exitCode,
        timedOut,
        durationMs: Math.round(performance.now() - started),
        stdout: stdout.base64(),
        stderr: stderr.base64(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      });
    });
  });
}

// The host sends one command at a time and waits for its answer. A line {"cancel": id} ends
// that command if it is still running.
let runningId;
createInterface({ input: process.stdin }).on("line", async (line) => {
  const request = JSON.parse(line);
  if (request.cancel !== undefined) {
    if (request.cancel === runningId) killLeftovers();
    return;
  }
  runningId = request.id;
  const result = await run(request);
  runningId = undefined;
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
