/**
 * Contract tests: the SDK's own client code (inside the real Sandbox Durable Object, reached
 * through the real stub from getSandbox) against the local container host, for every container
 * route the consumer uses. Results and errors are checked as they arrive across the Durable
 * Object boundary. When the pinned SDK version changes, these say what broke. They run against
 * our agent (`npm test`) and against Cloudflare's own container server (`npm run
 * test:reference`); where the two differ, the expectation is the real server's, and a
 * difference our agent keeps is marked with why.
 */

import { env } from "cloudflare:test";
import { type ExecEvent, getSandbox, parseSSEStream, streamFile } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { SandboxOperationError } from "../../sandbox/port";
import { SdkSandbox } from "../../sandbox/sdkSandbox";
import { uniqueSandbox } from "./client";
import { onReferenceServer } from "./support/containerServer";

const OUTPUT_CAP = 64 * 1024;

function sandboxStub(prefix: string) {
  return getSandbox(env.Sandbox, uniqueSandbox(prefix));
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of streamFile(stream)) parts.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

async function expectPortError(promise: Promise<unknown>): Promise<SandboxOperationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SandboxOperationError);
  if (!(error instanceof SandboxOperationError)) throw new Error("unreachable");
  return error;
}

describe("SDK client <-> local container host, across the Durable Object boundary", () => {
  it("execStream: start, stdout and stderr events, complete with the exit code", async () => {
    const sandbox = sandboxStub("contract-stream");
    // `(exit 3)`, not `exit 3`: the real server runs the command in its session's shell (below).
    const stream = await sandbox.execStream("echo out; echo err >&2; (exit 3)", { cwd: "/workspace", env: { A: "1" } });
    const events: ExecEvent[] = [];
    for await (const event of parseSSEStream<ExecEvent>(stream)) events.push(event);
    expect(events[0]?.type).toBe("start");
    expect(events.filter((e) => e.type === "stdout").map((e) => e.data)).toEqual(["out\n"]);
    expect(events.filter((e) => e.type === "stderr").map((e) => e.data)).toEqual(["err\n"]);
    expect(events.at(-1)).toMatchObject({ type: "complete", exitCode: 3 });
  });

  // Agent only. Both servers run a streamed command in a subshell of the session's shell, so a
  // top-level `exit` ends that subshell; Cloudflare's stream then never completes nor reports an
  // error (a bug of that server: the caller waits forever), where our agent completes with N.
  it.skipIf(onReferenceServer)(
    "execStream: a top-level `exit N` completes with N (our agent; the real server never completes)",
    async () => {
      const sandbox = sandboxStub("contract-stream-exit");
      const stream = await sandbox.execStream("echo out; exit 3", { cwd: "/workspace" });
      const events: ExecEvent[] = [];
      for await (const event of parseSSEStream<ExecEvent>(stream)) events.push(event);
      expect(events.at(-1)).toMatchObject({ type: "complete", exitCode: 3 });
    },
  );

  it("exec: commands share the session's shell; a top-level `exit N` ends it (SESSION_TERMINATED), and the next exec starts afresh", async () => {
    const sandbox = sandboxStub("contract-exec-exit");
    // A session of its own, not the default one: the SDK names the default session after the
    // sandbox, and a first call that reaches the object before getSandbox has told it its name
    // runs in "sandbox-default" while later calls run in "sandbox-<name>", a fresh shell.
    const session = await sandbox.createSession({ id: "contract-shell" });
    await session.exec("cd /tmp; export KEPT=yes");
    expect((await session.exec('pwd; echo "$KEPT"; echo $$')).stdout).toMatch(/^\/tmp\nyes\n\d+$/);
    const outcome = await session.exec("echo side-effect > /workspace/exited.txt; exit 3").then(
      (result) => ({ exitCode: result.exitCode }),
      (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
    );
    // The server's answer (410 SESSION_TERMINATED), as the SDK's error arrives over RPC.
    expect(outcome).toMatchObject({ error: expect.stringMatching(/SessionTerminatedError|session.*terminated/i) });
    expect((await sandbox.readFile("/workspace/exited.txt")).content).toBe("side-effect\n");
    // The session's state went with its shell.
    expect((await session.exec("pwd; printenv KEPT || echo gone")).stdout).toBe("/workspace\ngone");
  });

  it("exec: result shape, cwd and env; the output's final newline is dropped", async () => {
    const sandbox = sandboxStub("contract-exec");
    await sandbox.mkdir("/workspace/sub/dir", { recursive: true });
    const result = await sandbox.exec('pwd; echo "$GREETING"', { cwd: "/workspace/sub", env: { GREETING: "hi" } });
    // The real server joins the output's lines with newlines: "hi\n" reads "hi" (its stream keeps it).
    expect(result).toMatchObject({ success: true, exitCode: 0, stdout: "/workspace/sub\nhi", stderr: "" });
    expect((await sandbox.exec("printf 'a\\n\\nb\\n\\n'; printf x >&2")).stdout).toBe("a\n\nb\n");
  });

  it("writeFile and readFile, text and base64, and readFileStream byte for byte", async () => {
    const sandbox = sandboxStub("contract-files");
    await sandbox.writeFile("/workspace/a/hello.txt", "hello\n");
    expect(await sandbox.readFile("/workspace/a/hello.txt")).toMatchObject({ content: "hello\n", size: 6 });

    const bytes = new Uint8Array(200_000).map((_, i) => (i * 31) % 256);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    await sandbox.writeFile("/workspace/a/blob.bin", btoa(binary), { encoding: "base64" });
    const encoded = await sandbox.readFile("/workspace/a/blob.bin", { encoding: "base64" });
    expect(encoded).toMatchObject({ encoding: "base64", isBinary: true, size: bytes.byteLength });
    expect(await collect(await sandbox.readFileStream("/workspace/a/blob.bin"))).toEqual(bytes);
  });

  it("listFiles (recursive, hidden files), exists, mkdir, renameFile, moveFile, deleteFile", async () => {
    const sandbox = sandboxStub("contract-listing");
    await sandbox.writeFile("/workspace/tree/.hidden", "h");
    await sandbox.writeFile("/workspace/tree/sub/file.txt", "abc");
    const listing = await sandbox.listFiles("/workspace/tree", { recursive: true, includeHidden: true });
    const files = listing.files.map((f) => ({ path: f.absolutePath, type: f.type, size: f.type === "file" ? f.size : undefined }));
    expect(files).toEqual(
      expect.arrayContaining([
        { path: "/workspace/tree/.hidden", type: "file", size: 1 },
        { path: "/workspace/tree/sub", type: "directory", size: undefined },
        { path: "/workspace/tree/sub/file.txt", type: "file", size: 3 },
      ]),
    );
    expect((await sandbox.exists("/workspace/tree/sub/file.txt")).exists).toBe(true);
    await sandbox.renameFile("/workspace/tree/sub/file.txt", "/workspace/tree/sub/renamed.txt");
    await sandbox.moveFile("/workspace/tree/sub/renamed.txt", "/workspace/tree/moved.txt");
    expect((await sandbox.readFile("/workspace/tree/moved.txt")).content).toBe("abc");
    await sandbox.deleteFile("/workspace/tree/moved.txt");
    expect((await sandbox.exists("/workspace/tree/moved.txt")).exists).toBe(false);
  });

  it("maps the SDK's errors, as they arrive over RPC, onto the port's codes", async () => {
    const port = new SdkSandbox(sandboxStub("contract-errors"), OUTPUT_CAP);
    expect((await expectPortError(port.readFile("/workspace/missing.txt"))).code).toBe("FILE_NOT_FOUND");
    expect((await expectPortError(port.deleteFile("/workspace/missing.txt"))).code).toBe("FILE_NOT_FOUND");
    await port.writeFile("/workspace/dir/inner.txt", new TextEncoder().encode("x"));
    const isDirectory = await expectPortError(port.deleteFile("/workspace/dir"));
    expect(isDirectory.code).toBe("IS_DIRECTORY");
    expect(isDirectory.retryable).toBe(false);
  });
});

describe("ending commands through means that survive RPC", () => {
  /**
   * The `sleep 31`..`sleep 34` processes the sandbox's own `ps` sees. A `ps` that failed or saw
   * nothing would report none and pass every check, so each look starts a canary process
   * (`sleep 36`) first and must see it.
   */
  async function sleepers(port: SdkSandbox): Promise<string[]> {
    const result = await port.exec({
      // The canary is listed only once it has exec'd into sleep: wait for that before listing.
      command:
        "sleep 36 & canary=$!; for i in $(seq 100); do grep -q 36 /proc/$canary/cmdline 2>/dev/null && break; sleep 0.02; done; " +
        "ps -eo args=; kill $canary; wait $canary 2>/dev/null; true",
      cwd: "/workspace",
      env: {},
      timeoutMs: 10_000,
    });
    expect(result.exitCode).toBe(0);
    const running = new TextDecoder()
      .decode(result.stdout.bytes)
      .split("\n")
      .map((line) => line.trim());
    expect(running).toContain("sleep 36");
    return running.filter((args) => /^sleep 3[1-4]$/.test(args));
  }

  it("times a command out at timeoutMs and ends its whole process tree", async () => {
    const port = new SdkSandbox(sandboxStub("contract-timeout"), OUTPUT_CAP);
    const started = Date.now();
    const result = await port.exec({
      command: "(sleep 31; echo late) & sleep 32; echo never",
      cwd: "/workspace",
      env: {},
      timeoutMs: 1_000,
    });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await sleepers(port)).toEqual([]);
  });

  it("cancels a running command when the job's signal aborts, and ends its process tree", async () => {
    const port = new SdkSandbox(sandboxStub("contract-cancel"), OUTPUT_CAP);
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(), 500);
    const error = await expectPortError(
      port.exec({ command: "sleep 33 & sleep 34", cwd: "/workspace", env: {}, timeoutMs: 30_000, signal: cancel.signal }),
    );
    expect(error.code).toBe("CANCELLED");
    expect(await sleepers(port)).toEqual([]);
  });

  it("keeps the head and the tail of output over the cap, saying how much was dropped", async () => {
    const port = new SdkSandbox(sandboxStub("contract-output"), 1000);
    const result = await port.exec({
      command: "echo FIRST; seq 1 20000; echo LAST",
      cwd: "/workspace",
      env: {},
      timeoutMs: 10_000,
    });
    const text = new TextDecoder().decode(result.stdout.bytes);
    expect(text.startsWith("FIRST\n")).toBe(true);
    expect(text.endsWith("20000\nLAST\n")).toBe(true);
    expect(result.stdout.droppedBytes).toBe(result.stdout.totalBytes - 1000);
    expect(text).toContain(`[... ${result.stdout.droppedBytes} bytes of output dropped here ...]`);
  });
});
