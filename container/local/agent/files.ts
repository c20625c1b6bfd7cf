/**
 * The container API's file operations on absolute paths inside the sandbox, with the real
 * container's error codes and messages (packages/sandbox-container/src/services/file-service.ts).
 */
import { cp, lstat, mkdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { AgentError, ErrorCode, fileErrorFromErrno } from "./errors.ts";
import { detectMimeType, isBinaryMimeType } from "./mime.ts";

/** Encoded (JSON) reads are capped like the real container's; readFileStream has no cap. */
export const MAX_ENCODED_FILE_SIZE = 32 * 1024 * 1024;

export type FileMetadata = { mimeType: string; size: number; isBinary: boolean; encoding: "utf-8" | "base64" };

async function statOrNull(path: string, follow = true) {
  try {
    return follow ? await stat(path) : await lstat(path);
  } catch {
    return null;
  }
}

export async function fileMetadata(path: string, displayPath: string, operation: string): Promise<FileMetadata> {
  const info = await statOrNull(path);
  if (!info) throw new AgentError(ErrorCode.FILE_NOT_FOUND, `File not found: ${displayPath}`, { path: displayPath, operation });
  if (info.isDirectory()) {
    throw new AgentError(ErrorCode.IS_DIRECTORY, `Path is a directory: ${displayPath}`, { path: displayPath, operation });
  }
  // Sniffing opens the file: a link swapped to something unreadable fails here like a read would.
  const mimeType = await detectMimeType(path, info.size).catch((error: unknown) => {
    throw fileErrorFromErrno(error, displayPath, operation);
  });
  const isBinary = isBinaryMimeType(mimeType);
  return { mimeType, size: info.size, isBinary, encoding: isBinary ? "base64" : "utf-8" };
}

export async function writeSandboxFile(path: string, displayPath: string, content: string, encoding: string | undefined): Promise<void> {
  const base64 = encoding === "base64";
  if (base64 && !/^[A-Za-z0-9+/=]*$/.test(content)) {
    throw new AgentError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid base64 content for '${displayPath}': must contain only A-Z, a-z, 0-9, +, /, =`,
      { validationErrors: [{ field: "content", message: "Invalid base64 characters", code: "INVALID_BASE64" }] },
    );
  }
  try {
    // Bun.write, which the real container uses, creates missing parent directories.
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, base64 ? Buffer.from(content, "base64") : content);
  } catch (error) {
    throw fileErrorFromErrno(error, displayPath, "write");
  }
}

export async function readSandboxFile(
  path: string,
  displayPath: string,
  encoding: string | undefined,
): Promise<{ content: string; metadata: FileMetadata }> {
  const metadata = await fileMetadata(path, displayPath, "read");
  if (metadata.size > MAX_ENCODED_FILE_SIZE) {
    throw new AgentError(
      ErrorCode.FILE_TOO_LARGE,
      `File too large. Size ${metadata.size} bytes exceeds the 32 MiB limit. Use readFileStream() for large files.`,
      { path: displayPath, operation: "read", actualSize: metadata.size, maxSize: MAX_ENCODED_FILE_SIZE },
    );
  }
  // An explicit encoding wins over the MIME-based choice, as in the real container.
  const chosen = encoding === "base64" ? "base64" : encoding === "utf-8" || encoding === "utf8" ? "utf-8" : metadata.encoding;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw fileErrorFromErrno(error, displayPath, "read");
  }
  return {
    content: chosen === "base64" ? bytes.toString("base64") : bytes.toString("utf8"),
    metadata: { ...metadata, encoding: chosen, isBinary: chosen === "base64" },
  };
}

export async function deleteSandboxFile(path: string, displayPath: string): Promise<void> {
  // lstat: a symlink is deleted itself, never followed to its target.
  const info = await statOrNull(path, false);
  if (!info) throw new AgentError(ErrorCode.FILE_NOT_FOUND, `File not found: ${displayPath}`, { path: displayPath, operation: "delete" });
  if (info.isDirectory()) {
    throw new AgentError(
      ErrorCode.IS_DIRECTORY,
      `Cannot delete directory with deleteFile() at '${displayPath}'. Use exec('rm -rf <path>') instead.`,
      { path: displayPath, operation: "delete" },
    );
  }
  try {
    await unlink(path);
  } catch (error) {
    throw fileErrorFromErrno(error, displayPath, "delete");
  }
}

/** `mv source destination`: into the destination when it is a directory, across filesystems if need be. */
export async function moveSandboxPath(source: string, destination: string, displaySource: string): Promise<void> {
  if (!(await statOrNull(source, false))) {
    throw new AgentError(ErrorCode.FILE_NOT_FOUND, `Source file not found: ${displaySource}`, { path: displaySource, operation: "move" });
  }
  const destinationInfo = await statOrNull(destination);
  const target = destinationInfo?.isDirectory() ? join(destination, basename(source)) : destination;
  try {
    await rename(source, target);
  } catch (error) {
    const errno = error instanceof Error && "code" in error ? error.code : undefined;
    if (errno !== "EXDEV") throw fileErrorFromErrno(error, displaySource, "move");
    try {
      await cp(source, target, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      await rm(source, { recursive: true, force: true });
    } catch (copyError) {
      throw fileErrorFromErrno(copyError, displaySource, "move");
    }
  }
}

export async function makeSandboxDirectory(path: string, displayPath: string, recursive: boolean): Promise<void> {
  try {
    await mkdir(path, { recursive });
  } catch (error) {
    const stderr = error instanceof Error ? error.message : String(error);
    throw new AgentError(ErrorCode.FILESYSTEM_ERROR, "mkdir operation failed with exit code 1", {
      path: displayPath,
      options: { recursive },
      exitCode: 1,
      stderr,
    });
  }
}

/** `test -e`: follows symlinks, so a dangling link does not exist. */
export async function sandboxPathExists(path: string): Promise<boolean> {
  return (await statOrNull(path)) !== null;
}
