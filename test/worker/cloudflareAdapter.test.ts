/** Unit tests of the Cloudflare Sandbox SDK adapter against a fake stub with the SDK's shapes. */
import { ContainerUnavailableError } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { CloudflareSandbox } from "../../sandbox/cloudflare";
import { SandboxOperationError } from "../../sandbox/port";
import { execResult, fakeSdkSandbox } from "./support/fakeSdkSandbox";

const decoder = new TextDecoder();
const LIST_WORKSPACE = { command: "ls", cwd: "/workspace", env: {}, timeoutMs: 60_000, network: false };

async function failureOf(promise: Promise<unknown>): Promise<SandboxOperationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof SandboxOperationError)) throw new Error(`expected a SandboxOperationError, got ${String(error)}`);
  return error;
}

describe("Cloudflare sandbox adapter", () => {
  it("maps an exec result, cutting output at the cap", async () => {
    const { sandbox, calls } = fakeSdkSandbox({
      exec: async () => execResult({ exitCode: 2, success: false, stdout: "0123456789", stderr: "oops" }),
    });
    const adapter = new CloudflareSandbox(sandbox, { maxOutputBytes: 4 });
    const result = await adapter.exec({ command: "make", cwd: "/workspace/app", env: { A: "1" }, timeoutMs: 5000, network: false });
    expect(result).toMatchObject({ exitCode: 2, timedOut: false, stdoutTruncated: true, stderrTruncated: false });
    expect(decoder.decode(result.stdout)).toBe("0123");
    expect(decoder.decode(result.stderr)).toBe("oops");
    expect(calls.exec[0]).toEqual({ command: "make", options: { cwd: "/workspace/app", env: { A: "1" }, timeout: 5000 } });
  });

  it("feeds stdin through a private file, since the SDK's exec has none", async () => {
    const { sandbox, calls } = fakeSdkSandbox({ exec: async () => execResult({}) });
    await new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).exec({
      command: "cat -",
      cwd: "/workspace",
      env: {},
      stdin: "input",
      timeoutMs: 1000,
      network: false,
    });
    const stdinPath = calls.writes[0]?.path ?? "";
    expect(calls.writes[0]?.content).toBe("input");
    expect(calls.exec[0]?.command).toBe(`sh -c 'cat -' < ${stdinPath}; status=$?; rm -f ${stdinPath}; exit $status`);
  });

  it("reports the SDK's thrown timeout as a timed-out result", async () => {
    const { sandbox } = fakeSdkSandbox({
      exec: async (_command, options) => {
        await new Promise((resolve) => setTimeout(resolve, options?.timeout ?? 0));
        throw new Error("Command timed out");
      },
    });
    const result = await new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).exec({
      command: "sleep 9",
      cwd: "/workspace",
      env: {},
      timeoutMs: 50,
      network: false,
    });
    expect(result).toMatchObject({ timedOut: true, exitCode: null });
  });

  it("ends the exec when the job is cancelled, through the SDK's abort signal", async () => {
    const cancellation = new AbortController();
    const { sandbox, calls } = fakeSdkSandbox({
      exec: (_command, options) =>
        new Promise((_resolve, reject) => options?.signal?.addEventListener("abort", () => reject(new Error("Operation was aborted")))),
    });
    const running = new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).exec({ ...LIST_WORKSPACE, signal: cancellation.signal });
    cancellation.abort();
    expect(await failureOf(running)).toMatchObject({ code: "CANCELLED", retryable: false });
    expect(calls.exec[0]?.options?.signal).toBe(cancellation.signal);
  });

  it("marks an unavailable container as a retryable fault", async () => {
    const unavailable = new ContainerUnavailableError({
      code: "INTERNAL_ERROR",
      message: "container is starting",
      context: { reason: "container_starting", retryable: true },
      httpStatus: 503,
      timestamp: new Date().toISOString(),
    });
    const { sandbox } = fakeSdkSandbox({ exec: async () => Promise.reject(unavailable) });
    const error = await failureOf(new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).exec(LIST_WORKSPACE));
    expect(error).toMatchObject({ code: "SANDBOX_UNAVAILABLE", retryable: true });
  });

  it("marks a lost connection (a platform-transient error) as retryable", async () => {
    const { sandbox } = fakeSdkSandbox({ exec: async () => Promise.reject(new Error("Network connection lost.")) });
    const error = await failureOf(new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).exec(LIST_WORKSPACE));
    expect(error).toMatchObject({ code: "SANDBOX_UNAVAILABLE", retryable: true });
  });

  it("streams a file out of the SDK's SSE file stream, bytes intact", async () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) % 256);
    const { sandbox } = fakeSdkSandbox({ files: { "/workspace/dist/app.bin": bytes } });
    const file = await new CloudflareSandbox(sandbox, { maxOutputBytes: 100 }).readFile("/workspace/dist/app.bin");
    expect(file.size).toBe(300);
    expect(new Uint8Array(await new Response(file.body).arrayBuffer())).toEqual(bytes);
  });

  it("maps a missing file to FILE_NOT_FOUND, which is final", async () => {
    const { sandbox } = fakeSdkSandbox({ files: {} });
    const adapter = new CloudflareSandbox(sandbox, { maxOutputBytes: 100 });
    expect(await failureOf(adapter.readFile("/workspace/nope"))).toMatchObject({ code: "FILE_NOT_FOUND", retryable: false });
    expect(await failureOf(adapter.deleteFile("/workspace/nope"))).toMatchObject({ code: "FILE_NOT_FOUND", retryable: false });
  });

  it("writes bytes as base64 and lists regular files recursively", async () => {
    const { sandbox, calls } = fakeSdkSandbox({
      files: { "/workspace/a/b.txt": new Uint8Array(3), "/workspace/c.txt": new Uint8Array(5) },
    });
    const adapter = new CloudflareSandbox(sandbox, { maxOutputBytes: 100 });
    await adapter.writeFile("/workspace/x.bin", Uint8Array.from([0, 255, 10]));
    expect(calls.writes[0]).toEqual({ path: "/workspace/x.bin", content: "AP8K", encoding: "base64" });
    expect(await adapter.listFiles("/workspace")).toEqual([
      { path: "/workspace/a/b.txt", size: 3 },
      { path: "/workspace/c.txt", size: 5 },
    ]);
  });
});
