/**
 * The sandbox agent (container/local/agent) as the SDK's client meets it: the bundled agent runs
 * as a plain process on 127.0.0.1 and every route is checked against the shapes the SDK parses
 * (JSON bodies, SSE frames, the error body its createErrorFromResponse maps to FileNotFoundError
 * and friends), plus how commands run as on Cloudflare's server: a session's in its one shell, in
 * order, a streamed one in a subshell that kill-all or the session's delete ends with its whole
 * group. With bubblewrap present, one test runs the agent alone in a pid namespace with --contain.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { buildAgentBundle } from "../../container/local/agent/bundle";

type RunningAgent = { url: string; pid: number; child: ChildProcess };

let dir: string;
let bundle: string;
let workspace: string;
let agent: RunningAgent;

/** The agent's first stdout line, which it prints once it accepts connections. */
async function readyLine(child: ChildProcess): Promise<unknown> {
  const first = (async () => {
    for await (const line of createInterface({ input: child.stdout ?? process.stdin })) return line;
    return "";
  })();
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("agent did not get ready")), 5_000));
  return JSON.parse(await Promise.race([first, timeout]));
}

async function startAgent(command: string, args: string[]): Promise<RunningAgent> {
  // The sessions' output files go under the test's directory: a SIGKILLed agent cannot remove them.
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TMPDIR: dir } });
  const ready = z.object({ ready: z.literal(true), port: z.number() }).parse(await readyLine(child));
  return { url: `http://127.0.0.1:${ready.port}`, pid: child.pid ?? 0, child };
}

function stopAgent(running: RunningAgent | undefined): void {
  if (running && running.child.exitCode === null) running.child.kill("SIGKILL");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-test-"));
  workspace = join(dir, "workspace");
  await mkdir(workspace);
  bundle = join(dir, "agent.mjs");
  await buildAgentBundle(bundle);
  agent = await startAgent(process.execPath, [bundle, "--port", "0", "--cwd", workspace]);
});

afterAll(async () => {
  stopAgent(agent);
  await rm(dir, { recursive: true, force: true });
});

function post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${agent.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** The container's error body, which the SDK's createErrorFromResponse switches on. */
const ErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  context: z.record(z.string(), z.unknown()),
  httpStatus: z.number(),
  timestamp: z.iso.datetime(),
});

async function expectError(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  const body = ErrorBody.parse(await response.json());
  expect(body).toMatchObject({ code, httpStatus: status });
  return body;
}

const ExecResult = z.object({
  success: z.boolean(),
  exitCode: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  command: z.string(),
  duration: z.number(),
  timestamp: z.iso.datetime(),
});

const SseEvent = z.looseObject({ type: z.string() });
type SseEvent = z.infer<typeof SseEvent>;

/** Frames as the SDK's parseSSEStream reads them: `data: <json>` blocks separated by a blank line. */
function parseFrames(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .filter((frame) => frame.startsWith("data: "))
    .map((frame) => SseEvent.parse(JSON.parse(frame.slice("data: ".length))));
}

async function sse(response: Response): Promise<SseEvent[]> {
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/event-stream");
  return parseFrames(await response.text());
}

/** Reads a response body's text until `enough` says so, or to its end. */
async function readStream(reader: ReadableStreamDefaultReader<Uint8Array> | undefined, enough: (text: string) => boolean): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (reader && !enough(text)) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  return text;
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

describe("readiness and sessions", () => {
  it("answers ping, version and the container's 404 shape", async () => {
    expect(await (await fetch(`${agent.url}/api/ping`)).json()).toMatchObject({ success: true, status: "healthy" });
    expect(await (await fetch(`${agent.url}/api/version`)).json()).toMatchObject({ success: true, version: "0.12.10" });
    const body = await expectError(await fetch(`${agent.url}/api/git/checkout`), 404, "UNKNOWN_ERROR");
    expect(body.message).toBe("The requested endpoint was not found");
  });

  it("serves the same API on a Unix socket, announcing readiness on stdout", async () => {
    const socketPath = join(dir, "agent.sock");
    const child = spawn(process.execPath, [bundle, "--socket", socketPath, "--cwd", workspace], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      expect(await readyLine(child)).toEqual({ ready: true });
      const body = await new Promise<string>((resolve, reject) => {
        request({ socketPath, path: "/api/ping" }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve(text));
        })
          .on("error", reject)
          .end();
      });
      expect(JSON.parse(body)).toMatchObject({ success: true, status: "healthy" });
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("keeps an idle connection open for its client's next request, past Node's 5 s keep-alive timeout", { timeout: 20_000 }, async () => {
    const { port } = new URL(agent.url);
    const socket = connect(Number(port), "127.0.0.1");
    let received = "";
    let closedByAgent = false;
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.on("end", () => (closedByAgent = true));
    const answers = () => received.split("HTTP/1.1 200").length - 1;
    const ping = async (count: number) => {
      socket.write("GET /api/ping HTTP/1.1\r\nHost: localhost:3000\r\n\r\n");
      const deadline = Date.now() + 5_000;
      while (answers() < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    try {
      await ping(1);
      expect(answers()).toBe(1);
      // The host's pool may hand out a connection after any idle time; only it closes one.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect(closedByAgent).toBe(false);
      await ping(2);
      expect(answers()).toBe(2);
    } finally {
      socket.destroy();
    }
  });

  it("creates a session once, reports the duplicate as SESSION_ALREADY_EXISTS, and deletes it", async () => {
    const created = await post("/api/session/create", { id: "s-once", env: { GREETING: "hi" }, cwd: workspace });
    expect(await created.json()).toMatchObject({ success: true, containerPlacementId: null });
    const again = await expectError(await post("/api/session/create", { id: "s-once" }), 409, "SESSION_ALREADY_EXISTS");
    expect(again.context).toMatchObject({ sessionId: "s-once", containerPlacementId: null });
    expect(await (await post("/api/session/delete", { sessionId: "s-once" })).json()).toMatchObject({ success: true, sessionId: "s-once" });
    await expectError(await post("/api/session/delete", { sessionId: "s-once" }), 500, "INTERNAL_ERROR");
  });

  it("rejects a body that does not match the route as VALIDATION_FAILED", async () => {
    await expectError(await post("/api/execute", { sessionId: "x" }), 400, "VALIDATION_FAILED");
    await expectError(await post("/api/read", { path: "" }), 400, "VALIDATION_FAILED");
  });
});

describe("exec", () => {
  it("runs a command in the session's cwd and env, with request env and cwd on top", async () => {
    await post("/api/session/create", { id: "s-exec", env: { A: "session", B: "session" }, cwd: workspace });
    await mkdir(join(workspace, "sub"), { recursive: true });
    const first = ExecResult.parse(
      await (await post("/api/execute", { command: "pwd; echo $A $B; echo oops >&2; (exit 3)", sessionId: "s-exec" })).json(),
    );
    expect(first).toMatchObject({ success: false, exitCode: 3, stdout: `${workspace}\nsession session`, stderr: "oops" });
    const second = ExecResult.parse(
      await (
        await post("/api/execute", { command: "pwd; echo $A $B", sessionId: "s-exec", cwd: join(workspace, "sub"), env: { B: "request" } })
      ).json(),
    );
    expect(second).toMatchObject({ success: true, exitCode: 0, stdout: `${join(workspace, "sub")}\nsession request` });
  });

  it("runs a session's commands in one shell: cd, export and functions carry over, and a request's cwd and env do not", async () => {
    await post("/api/session/create", { id: "s-shell", cwd: workspace });
    const run = async (command: string, extra: Record<string, unknown> = {}) =>
      ExecResult.parse(await (await post("/api/execute", { command, sessionId: "s-shell", ...extra })).json());
    await run("cd sub; export KEPT=yes; greet() { echo hello; }");
    await run("cd /; echo $SCOPED", { cwd: workspace, env: { SCOPED: "for-one" } });
    const [cwd, values, greeting, shellPid] = (
      await run('pwd; echo "$KEPT" "$(printenv SCOPED || echo unset)"; greet; echo $$')
    ).stdout.split("\n");
    expect([cwd, values, greeting]).toEqual([join(workspace, "sub"), "yes unset", "hello"]);
    // `$$` is the session's shell, the same process for every command of the session.
    expect((await run("echo $$")).stdout).toBe(shellPid);
    // A syntax error fails that command alone; the shell reads the next one as usual.
    expect(await run("echo 'unclosed")).toMatchObject({ exitCode: 2, stderr: expect.stringContaining("unexpected EOF") });
    expect((await run("echo still $KEPT")).stdout).toBe("still yes");
    // A top-level `return` is an error, and the text goes on after it, as pasted into a shell.
    expect(await run("return 4; echo after")).toMatchObject({
      exitCode: 0,
      stdout: "after",
      stderr: expect.stringContaining("return: can only"),
    });
    // Relative file paths resolve where the shell now is.
    await post("/api/write", { path: "relative.txt", content: "here", sessionId: "s-shell" });
    expect(await readFile(join(workspace, "sub", "relative.txt"), "utf8")).toBe("here");
    // The agent's own variable names are refused as a request's env.
    await expectError(
      await post("/api/execute", { command: "true", sessionId: "s-shell", env: { __as_command: "echo injected" } }),
      400,
      "VALIDATION_FAILED",
    );
  });

  it("answers a command that ends its session's shell with SESSION_TERMINATED; the next command starts a fresh session", async () => {
    await post("/api/session/create", { id: "s-exit", cwd: workspace, env: { A: "session" } });
    await post("/api/execute", { command: "export LOST=1", sessionId: "s-exit" });
    const ended = await expectError(
      await post("/api/execute", { command: "echo bye; exit 3", sessionId: "s-exit" }),
      410,
      "SESSION_TERMINATED",
    );
    expect(ended).toMatchObject({ message: "Session 's-exit' shell exited (exit code: 3)", context: { sessionId: "s-exit", exitCode: 3 } });
    const fresh = ExecResult.parse(
      await (await post("/api/execute", { command: "printenv LOST || echo gone", sessionId: "s-exit" })).json(),
    );
    expect(fresh.stdout).toBe("gone");
    // A shell ended between commands (here from the background) is reported once, on the next call.
    await post("/api/execute", { command: "(sleep 0.2; kill -9 $$) > /dev/null 2>&1 &", sessionId: "s-exit" });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await expectError(await post("/api/execute", { command: "true", sessionId: "s-exit" }), 410, "SESSION_TERMINATED");
    expect(ExecResult.parse(await (await post("/api/execute", { command: "echo again", sessionId: "s-exit" })).json()).stdout).toBe(
      "again",
    );
  });

  it("fails a command whose cwd does not exist as the session shell's cd would", async () => {
    const result = ExecResult.parse(
      await (await post("/api/execute", { command: "true", sessionId: "s-exec", cwd: join(dir, "missing") })).json(),
    );
    expect(result).toMatchObject({ exitCode: 1, stderr: `Failed to change directory to ${join(dir, "missing")}` });
  });

  it("streams start, output and complete as SSE frames", async () => {
    const events = await sse(
      await post("/api/execute/stream", { command: "echo out; sleep 0.1; echo err >&2; exit 2", sessionId: "s-exec" }),
    );
    expect(events.map((event) => event.type)).toEqual(["start", "stdout", "stderr", "complete"]);
    expect(events[0]).toMatchObject({ type: "start", command: "echo out; sleep 0.1; echo err >&2; exit 2" });
    expect(events[1]).toMatchObject({ data: "out\n" });
    expect(events[2]).toMatchObject({ data: "err\n" });
    expect(events[3]).toMatchObject({ exitCode: 2 });
  });

  it("ignores timeoutMs on a streamed command, as the container's stream handler does", async () => {
    const events = await sse(await post("/api/execute/stream", { command: "sleep 0.3; echo done", sessionId: "s-exec", timeoutMs: 50 }));
    expect(events.slice(1)).toMatchObject([
      { type: "stdout", data: "done\n" },
      { type: "complete", exitCode: 0 },
    ]);
  });

  it("runs a session's commands one at a time in arrival order, and another session's beside them", async () => {
    const log = join(workspace, "order.log");
    const slow = post("/api/execute", { command: `echo start-1 >> ${log}; sleep 0.5; echo end-1 >> ${log}`, sessionId: "s-exec" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const behind = post("/api/execute", { command: `echo start-2 >> ${log}; echo end-2 >> ${log}`, sessionId: "s-exec" });
    const elsewhere = post("/api/execute", { command: `echo other >> ${log}`, sessionId: "s-order-other" });
    await Promise.all([slow, behind, elsewhere]);
    expect(await readFile(log, "utf8")).toBe("start-1\nother\nend-1\nstart-2\nend-2\n");
  });

  it("leaves what a command started in the background running when it exits, as Cloudflare's server does", async () => {
    const result = ExecResult.parse(
      await (await post("/api/execute", { command: "sleep 30 > /dev/null & echo $!", sessionId: "s-exec" })).json(),
    );
    const pid = Number(result.stdout.trim());
    expect(isRunning(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
  });

  it("times out a session command like the container (CommandError), which keeps running in the shell ahead of the next", async () => {
    const log = join(workspace, "timeout.log");
    const started = Date.now();
    const response = await post("/api/execute", {
      command: `sleep 1; echo first-ended >> ${log}`,
      sessionId: "s-exec",
      timeoutMs: 300,
      cwd: dir,
      env: { SCOPED: "for-one" },
    });
    const body = await expectError(response, 500, "COMMAND_EXECUTION_ERROR");
    expect(body.message).toContain("Command timeout after 300ms");
    expect(Date.now() - started).toBeLessThan(1_000);
    // Another session is not held up by it.
    await post("/api/execute", { command: `echo other >> ${log}`, sessionId: "s-timeout-other" });
    // Queued behind it, and timed out too: it still runs once the first has ended.
    await expectError(
      await post("/api/execute", { command: `echo second-ran >> ${log}`, sessionId: "s-exec", timeoutMs: 100 }),
      500,
      "COMMAND_EXECUTION_ERROR",
    );
    const third = ExecResult.parse(
      await (
        await post("/api/execute", { command: `echo third-ran >> ${log}; pwd; printenv SCOPED || echo unset`, sessionId: "s-exec" })
      ).json(),
    );
    expect(await readFile(log, "utf8")).toBe("other\nfirst-ended\nsecond-ran\nthird-ran\n");
    // The timed-out command's own cwd and env went with it.
    expect(third.stdout).toBe(`${workspace}\nunset`);
  });

  it("times out a sessionless command with exit code 124, as the container does", async () => {
    const result = ExecResult.parse(
      await (await post("/api/execute", { command: "echo before; sleep 30", sessionId: "__DISABLE_SESSION__", timeoutMs: 200 })).json(),
    );
    expect(result).toMatchObject({ success: false, exitCode: 124, stdout: "before", stderr: "Command timed out after 200ms" });
  });

  it("keeps a streamed command running after its client disconnects, until kill-all ends its whole tree", async () => {
    const abort = new AbortController();
    const response = await post("/api/execute/stream", { command: "sleep 30 & echo $! $BASHPID; wait", sessionId: "s-exec" }, abort.signal);
    const reader = response.body?.getReader();
    const text = await readStream(reader, (sofar) => sofar.includes('"stdout"'));
    const stdout = parseFrames(text).find((event) => event.type === "stdout");
    const pids = String(stdout?.data).trim().split(" ").map(Number);
    abort.abort();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // As in the real container, the disconnect leaves the command running as a process record.
    expect(pids.every(isRunning)).toBe(true);
    const listed = z
      .object({
        success: z.literal(true),
        processes: z.array(z.object({ id: z.string(), command: z.string(), status: z.string(), startTime: z.iso.datetime() })),
      })
      .parse(await (await fetch(`${agent.url}/api/process/list?status=running`)).json());
    expect(listed.processes.map((process) => process.command)).toEqual(["sleep 30 & echo $! $BASHPID; wait"]);
    // A command queued behind it is a running process too, and kill-all ends it before it starts.
    const queuedMarker = join(workspace, "queued-ran");
    const queued = post("/api/execute/stream", { command: `touch ${queuedMarker}`, sessionId: "s-exec" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const killed = await fetch(`${agent.url}/api/process/kill-all`, { method: "DELETE" });
    expect(await killed.json()).toMatchObject({ success: true, cleanedCount: 2 });
    expect(pids.some(isRunning)).toBe(false);
    expect((await sse(await queued)).at(-1)).toMatchObject({ type: "complete", exitCode: 137 });
    await expect(readFile(queuedMarker)).rejects.toThrow();
    const after = await (await fetch(`${agent.url}/api/process/list`)).json();
    expect(after).toMatchObject({ processes: expect.arrayContaining([expect.objectContaining({ status: "killed" })]) });
    // The queue moves on: the next command runs.
    expect(ExecResult.parse(await (await post("/api/execute", { command: "echo next", sessionId: "s-exec" })).json()).stdout).toBe("next");
  });

  it("ends a session's shell and its streamed commands when the session is deleted", async () => {
    await post("/api/session/create", { id: "s-delete", cwd: workspace });
    const response = await post("/api/execute/stream", { command: "sleep 300 & echo $!; wait", sessionId: "s-delete" });
    const reader = response.body?.getReader();
    let text = await readStream(reader, (sofar) => sofar.includes('"stdout"'));
    const pid = Number(String(parseFrames(text).find((event) => event.type === "stdout")?.data).trim());
    expect(isRunning(pid)).toBe(true);
    await post("/api/session/delete", { sessionId: "s-delete" });
    text += await readStream(reader, () => false);
    expect(parseFrames(text).at(-1)).toMatchObject({ type: "error", error: expect.stringContaining("shell exited") });
    expect(isRunning(pid)).toBe(false);
  });

  it("reports a finished streamed command in the process list", async () => {
    await sse(await post("/api/execute/stream", { command: "exit 4", sessionId: "s-exec" }));
    const listed = await (await fetch(`${agent.url}/api/process/list?status=failed`)).json();
    expect(listed).toMatchObject({ processes: expect.arrayContaining([expect.objectContaining({ command: "exit 4", exitCode: 4 })]) });
  });
});

describe("files", () => {
  const session = "s-files";
  beforeAll(async () => {
    await post("/api/session/create", { id: session, cwd: workspace });
  });

  it("round-trips binary content through base64 write and read", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const written = await post("/api/write", {
      path: "bin/all.bytes",
      content: bytes.toString("base64"),
      encoding: "base64",
      sessionId: session,
    });
    expect(await written.json()).toMatchObject({ success: true, path: "bin/all.bytes" });
    expect(await readFile(join(workspace, "bin/all.bytes"))).toEqual(bytes);
    const read = await (await post("/api/read", { path: "bin/all.bytes", sessionId: session })).json();
    expect(read).toMatchObject({ success: true, encoding: "base64", isBinary: true, size: 256, mimeType: "application/octet-stream" });
    expect(Buffer.from(z.object({ content: z.string() }).parse(read).content, "base64")).toEqual(bytes);
  });

  it("writes and reads text as utf-8", async () => {
    await post("/api/write", { path: `${workspace}/notes.txt`, content: "héllo\n", sessionId: session });
    const read = await (await post("/api/read", { path: "notes.txt", sessionId: session })).json();
    expect(read).toMatchObject({ content: "héllo\n", encoding: "utf-8", isBinary: false, mimeType: "text/plain", size: 7 });
    await expectError(
      await post("/api/write", { path: "x", content: "not base64!", encoding: "base64", sessionId: session }),
      400,
      "VALIDATION_FAILED",
    );
  });

  it("answers a missing file with FILE_NOT_FOUND (the SDK's FileNotFoundError)", async () => {
    const body = await expectError(await post("/api/read", { path: "/nope/missing.txt", sessionId: session }), 404, "FILE_NOT_FOUND");
    expect(body).toMatchObject({ message: "File not found: /nope/missing.txt", context: { path: "/nope/missing.txt" } });
  });

  it("streams a file as metadata, 65535-byte base64 chunks and complete", async () => {
    const bytes = randomBytes(200_000);
    await writeFile(join(workspace, "random.bin"), bytes);
    const events = await sse(await post("/api/read/stream", { path: "random.bin", sessionId: session }));
    expect(events[0]).toEqual({
      type: "metadata",
      mimeType: "application/octet-stream",
      size: 200_000,
      isBinary: true,
      encoding: "base64",
    });
    const chunks = events.filter((event) => event.type === "chunk").map((event) => Buffer.from(String(event.data), "base64"));
    expect(chunks.map((chunk) => chunk.length)).toEqual([65535, 65535, 65535, 3395]);
    expect(Buffer.concat(chunks)).toEqual(bytes);
    expect(events.at(-1)).toEqual({ type: "complete", bytesRead: 200_000 });
  });

  it("streams a missing file as one SSE error frame, as the container does", async () => {
    expect(await sse(await post("/api/read/stream", { path: "gone.bin", sessionId: session }))).toEqual([
      { type: "error", error: "File not found: gone.bin" },
    ]);
  });

  it("reads a huge file only as fast as the client takes it", async () => {
    const huge = join(workspace, "huge.bin");
    await writeFile(huge, "");
    await truncate(huge, 2 * 1024 ** 3);
    const abort = new AbortController();
    const response = await post("/api/read/stream", { path: huge, sessionId: session }, abort.signal);
    const reader = response.body?.getReader();
    await reader?.read();
    // The client stops reading; without backpressure the agent would keep reading the 2 GiB file
    // into memory (some 250 MB a second here).
    const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, "utf8"))?.[1]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = rssKiB();
    await new Promise((resolve) => setTimeout(resolve, 800));
    const growthKiB = rssKiB() - before;
    abort.abort();
    expect(growthKiB).toBeLessThan(16 * 1024);
    await rm(huge);
  });

  it("lists files with the container's FileInfo shape, hiding dot-names unless asked", async () => {
    const root = join(workspace, "tree");
    await mkdir(join(root, "dir/deeper"), { recursive: true });
    await writeFile(join(root, "dir/deeper/a.txt"), "abc");
    await writeFile(join(root, ".hidden"), "");
    await symlink("dir", join(root, "link"));
    const listing = z
      .object({
        success: z.literal(true),
        path: z.string(),
        count: z.number(),
        files: z.array(z.looseObject({ relativePath: z.string() })),
      })
      .parse(await (await post("/api/list-files", { path: root, sessionId: session, options: { recursive: true } })).json());
    expect(listing.files.map((file) => file.relativePath).sort()).toEqual(["dir", "dir/deeper", "dir/deeper/a.txt", "link"]);
    expect(listing.count).toBe(4);
    expect(listing.files.find((file) => file.relativePath === "dir/deeper/a.txt")).toMatchObject({
      name: "a.txt",
      absolutePath: join(root, "dir/deeper/a.txt"),
      type: "file",
      size: 3,
      mode: "rw-r--r--",
      permissions: { readable: true, writable: true, executable: false },
      modifiedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{10}$/),
    });
    expect(listing.files.find((file) => file.relativePath === "link")).toMatchObject({ type: "symlink" });
    const shallow = await (await post("/api/list-files", { path: "tree", sessionId: session, options: { includeHidden: true } })).json();
    expect(
      z
        .object({ files: z.array(z.object({ name: z.string() })) })
        .parse(shallow)
        .files.map((file) => file.name)
        .sort(),
    ).toEqual([".hidden", "dir", "link"]);
    await expectError(await post("/api/list-files", { path: join(root, "nope"), sessionId: session }), 404, "FILE_NOT_FOUND");
    await expectError(await post("/api/list-files", { path: join(root, ".hidden"), sessionId: session }), 400, "NOT_DIRECTORY");
  });

  it("makes directories, checks existence, renames, moves and deletes", async () => {
    expect(await (await post("/api/mkdir", { path: "m/n/o", recursive: true, sessionId: session })).json()).toMatchObject({
      success: true,
      recursive: true,
    });
    await expectError(await post("/api/mkdir", { path: "m/n/o", sessionId: session }), 500, "FILESYSTEM_ERROR");
    expect(await (await post("/api/exists", { path: "m/n/o", sessionId: session })).json()).toMatchObject({ success: true, exists: true });
    expect(await (await post("/api/exists", { path: "m/zzz", sessionId: session })).json()).toMatchObject({ exists: false });
    await post("/api/write", { path: "m/file.txt", content: "x", sessionId: session });
    expect(await (await post("/api/rename", { oldPath: "m/file.txt", newPath: "m/renamed.txt", sessionId: session })).json()).toMatchObject(
      {
        success: true,
        path: "m/file.txt",
        newPath: "m/renamed.txt",
      },
    );
    await post("/api/move", { sourcePath: "m/renamed.txt", destinationPath: "m/n", sessionId: session });
    expect(await readFile(join(workspace, "m/n/renamed.txt"), "utf8")).toBe("x");
    await expectError(
      await post("/api/move", { sourcePath: "m/absent", destinationPath: "m/n", sessionId: session }),
      404,
      "FILE_NOT_FOUND",
    );
    await expectError(await post("/api/delete", { path: "m/n", sessionId: session }), 400, "IS_DIRECTORY");
    expect(await (await post("/api/delete", { path: "m/n/renamed.txt", sessionId: session })).json()).toMatchObject({ success: true });
    await expectError(await post("/api/delete", { path: "m/n/renamed.txt", sessionId: session }), 404, "FILE_NOT_FOUND");
  });
});

const hasBubblewrap = (() => {
  try {
    execFileSync("bwrap", ["--unshare-pid", "--dev-bind", "/", "/", "--proc", "/proc", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasBubblewrap)("contained in its own pid namespace", () => {
  let contained: RunningAgent | undefined;
  afterAll(() => stopAgent(contained));

  it("leaves what an exec started in the background running, as Cloudflare's server does; kill-all ends a tracked command's session", async () => {
    contained = await startAgent("bwrap", [
      ...["--unshare-pid", "--die-with-parent", "--dev-bind", "/", "/", "--proc", "/proc"],
      ...[process.execPath, bundle, "--port", "0", "--contain", "--cwd", workspace],
    ]);
    const run = async (command: string) =>
      ExecResult.parse(
        await (
          await fetch(`${contained?.url}/api/execute`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ command, sessionId: "s" }),
          })
        ).json(),
      );
    const listNames = "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0\\n' '  '";
    const during = await run(`setsid sleep 30 & (sleep 29 &); sleep 0.1; ${listNames}`);
    expect(during.stdout).toContain("sleep 30");
    const after = await run(listNames);
    expect(after.stdout).toContain("sleep 30");
    expect(after.stdout).toContain("sleep 29");
    // A streamed command abandoned by its client runs on until kill-all, which ends its session:
    // what it started there goes with it, a process that called setsid does not.
    const abandoned = new AbortController();
    const stream = await fetch(`${contained?.url}/api/execute/stream`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        command: `sleep 31 & (setsid sleep 28 &); sleep 0.1; ${listNames}; echo; echo MARK$((40 + 2)); sleep 32`,
        sessionId: "s",
      }),
      signal: abandoned.signal,
    });
    const reader = stream.body?.getReader();
    let text = "";
    while (!text.includes("MARK42")) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    // The command's own listing (other commands wait until it ends); the start frame echoes the command, so skip it.
    const listing = parseFrames(text.slice(0, text.lastIndexOf("\n\n")))
      .filter((event) => event.type === "stdout")
      .map((event) => String(event.data))
      .join("");
    expect(listing).toContain("sleep 31");
    abandoned.abort();
    const killed = await fetch(`${contained?.url}/api/process/kill-all`, { method: "DELETE" });
    expect(await killed.json()).toMatchObject({ success: true, cleanedCount: 1 });
    const left = (await run(listNames)).stdout;
    expect(left).not.toContain("sleep 31");
    expect(left).not.toContain("sleep 32");
    expect(left).toContain("sleep 28");
  });
});
