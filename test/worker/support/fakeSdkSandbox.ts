/**
 * A fake of the Sandbox SDK's sandbox stub for unit tests of the Cloudflare adapter: it returns
 * the SDK's real result shapes (ExecResult, ListFilesResult, the SSE file stream) and throws
 * the SDK's real errors where the SDK exports them.
 */
import type { ExecOptions, ExecResult, ListFilesOptions } from "@cloudflare/sandbox";
import type { SdkSandbox } from "../../../sandbox/cloudflare";

/**
 * The SDK raises FileNotFoundError (a SandboxError with code FILE_NOT_FOUND) but does not export
 * the class; this has the same name, code and errorResponse shape.
 */
export class SdkFileNotFoundError extends Error {
  override readonly name = "FileNotFoundError";
  readonly errorResponse: { code: "FILE_NOT_FOUND"; message: string; context: { path: string }; httpStatus: number; timestamp: string };
  constructor(path: string) {
    super(`File not found: ${path}`);
    this.errorResponse = {
      code: "FILE_NOT_FOUND",
      message: this.message,
      context: { path },
      httpStatus: 404,
      timestamp: new Date().toISOString(),
    };
  }
  get code(): "FILE_NOT_FOUND" {
    return "FILE_NOT_FOUND";
  }
}

export interface FakeSdkCalls {
  exec: { command: string; options?: ExecOptions }[];
  writes: { path: string; content: string; encoding?: string }[];
}

/** Encodes a file the way the container streams it: SSE events metadata, chunk..., complete. */
export function fileSse(bytes: Uint8Array, chunkSize = 4): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const events: string[] = [
    JSON.stringify({ type: "metadata", mimeType: "application/octet-stream", size: bytes.length, isBinary: true, encoding: "base64" }),
  ];
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    let binary = "";
    for (const byte of bytes.subarray(offset, offset + chunkSize)) binary += String.fromCharCode(byte);
    events.push(JSON.stringify({ type: "chunk", data: btoa(binary) }));
  }
  events.push(JSON.stringify({ type: "complete", bytesRead: bytes.length }));
  return new ReadableStream({
    start(controller) {
      for (const event of events) controller.enqueue(encoder.encode(`data: ${event}\n\n`));
      controller.close();
    },
  });
}

export function fakeSdkSandbox(behaviour: {
  exec?: (command: string, options?: ExecOptions) => Promise<ExecResult>;
  files?: Record<string, Uint8Array>;
}): { sandbox: SdkSandbox; calls: FakeSdkCalls } {
  const calls: FakeSdkCalls = { exec: [], writes: [] };
  const files = behaviour.files ?? {};
  const sandbox: SdkSandbox = {
    async exec(command, options) {
      calls.exec.push({ command, options });
      if (!behaviour.exec) throw new Error("exec not expected");
      return behaviour.exec(command, options);
    },
    async writeFile(path, content, options) {
      if (typeof content !== "string") throw new Error("the adapter sends strings");
      calls.writes.push({ path, content, encoding: options?.encoding });
      return { success: true, path, timestamp: new Date().toISOString() };
    },
    async readFileStream(path) {
      const bytes = files[path];
      if (!bytes) throw new SdkFileNotFoundError(path);
      return fileSse(bytes);
    },
    async deleteFile(path) {
      if (!files[path]) throw new SdkFileNotFoundError(path);
      delete files[path];
      return { success: true, path, timestamp: new Date().toISOString() };
    },
    async listFiles(path: string, options?: ListFilesOptions) {
      const entries = Object.entries(files).filter(
        ([name]) => name.startsWith(`${path}/`) && (options?.recursive || !name.slice(path.length + 1).includes("/")),
      );
      return {
        success: true,
        path,
        count: entries.length,
        timestamp: new Date().toISOString(),
        files: entries.map(([name, bytes]) => ({
          name: name.slice(name.lastIndexOf("/") + 1),
          absolutePath: name,
          relativePath: name.slice(path.length + 1),
          type: "file",
          size: bytes.length,
          modifiedAt: new Date().toISOString(),
          mode: "rw-r--r--",
          permissions: { readable: true, writable: true, executable: false },
        })),
      };
    },
  };
  return { sandbox, calls };
}

export function execResult(fields: Partial<ExecResult>): ExecResult {
  return { success: true, exitCode: 0, stdout: "", stderr: "", command: "", duration: 1, timestamp: new Date().toISOString(), ...fields };
}
