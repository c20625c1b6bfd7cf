/**
 * Sandbox port adapter for the local sandbox host (container/local), used by `npm run dev`
 * and the tests. Every call is one HTTP request to the host on 127.0.0.1.
 */
import { HostError, HostExecResult, HostListResult } from "../schemas/sandboxHost";
import { cancelledError, type ExecRequest, type ExecResult, type FileStream, SandboxOperationError, type SandboxPort } from "./port";

/** Beyond a command's own timeout, how long the host may take to answer before it counts as down. */
const HOST_GRACE_MS = 30_000;
/** Bound on file calls; large artifacts stream well within it. */
const FILE_CALL_TIMEOUT_MS = 10 * 60 * 1000;

export interface LocalHostConfig {
  url: string;
  token: string;
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

export class LocalSandbox implements SandboxPort {
  constructor(
    private readonly host: LocalHostConfig,
    private readonly sandboxId: string,
  ) {}

  async exec(request: ExecRequest): Promise<ExecResult> {
    const { signal, ...body } = request;
    // Aborting the request makes the host end the command (cancellation).
    const response = await this.call("POST", "/exec", {
      body: JSON.stringify(body),
      contentType: "application/json",
      // The host kills the command at timeoutMs; this bounds a host that stops answering.
      timeoutMs: request.timeoutMs + HOST_GRACE_MS,
      signal,
    }).catch((error: unknown) => {
      if (signal?.aborted) throw cancelledError();
      throw error;
    });
    const result = HostExecResult.parse(await response.json());
    return {
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      stdout: fromBase64(result.stdoutBase64),
      stderr: fromBase64(result.stderrBase64),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
    };
  }

  async writeFile(path: string, content: Uint8Array): Promise<void> {
    const response = await this.call("PUT", `/files?path=${encodeURIComponent(path)}`, {
      body: content,
      contentType: "application/octet-stream",
    });
    await response.body?.cancel();
  }

  async readFile(path: string): Promise<FileStream> {
    const response = await this.call("GET", `/files?path=${encodeURIComponent(path)}`);
    const size = Number(response.headers.get("content-length"));
    if (!response.body || !Number.isSafeInteger(size)) {
      throw new SandboxOperationError("SANDBOX_ERROR", `Local sandbox host sent no sized body for ${path}`, true);
    }
    return { size, body: response.body };
  }

  async deleteFile(path: string): Promise<void> {
    const response = await this.call("DELETE", `/files?path=${encodeURIComponent(path)}`);
    await response.body?.cancel();
  }

  async listFiles(dir: string) {
    const response = await this.call("GET", `/list?path=${encodeURIComponent(dir)}`);
    return HostListResult.parse(await response.json()).files;
  }

  private async call(
    method: string,
    route: string,
    init: { body?: BodyInit; contentType?: string; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.host.token}` };
    if (init.contentType) headers["content-type"] = init.contentType;
    let response: Response;
    try {
      response = await fetch(`${this.host.url}/v1/sandboxes/${this.sandboxId}${route}`, {
        method,
        headers,
        body: init.body,
        signal: AbortSignal.any([AbortSignal.timeout(init.timeoutMs ?? FILE_CALL_TIMEOUT_MS), ...(init.signal ? [init.signal] : [])]),
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === "TimeoutError";
      const message = timedOut
        ? `Local sandbox host at ${this.host.url} did not answer in time`
        : `Local sandbox host at ${this.host.url} is not reachable (is \`npm run dev\` running?)`;
      throw new SandboxOperationError("SANDBOX_UNAVAILABLE", message, true, { cause: error });
    }
    if (response.ok) return response;
    const parsed = HostError.safeParse(await response.json().catch(() => undefined));
    const message = parsed.success ? parsed.data.error.message : `Local sandbox host answered ${response.status}`;
    const code = parsed.success ? parsed.data.error.code : "INTERNAL";
    if (code === "FILE_NOT_FOUND" || code === "PATH_REFUSED" || code === "IS_DIRECTORY") {
      throw new SandboxOperationError(code, message, false);
    }
    // A wrong token or a bad request is a configuration fault: retrying cannot fix it.
    throw new SandboxOperationError("SANDBOX_ERROR", message, response.status >= 500);
  }
}
