/**
 * MIME type and text/binary classification for reads, approximating the real container: the type
 * comes from the file extension (Bun.file().type), unknown extensions are sniffed (the container
 * runs `file --mime-type`), and a type is text only if it is text/*, a known textual application
 * type, or a +json/+xml suffix.
 */
import { open } from "node:fs/promises";
import { extname } from "node:path";

const BY_EXTENSION: Record<string, string> = {
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".html": "text/html",
  ".htm": "text/html",
  ".css": "text/css",
  ".csv": "text/csv",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".cjs": "text/javascript",
  ".ts": "text/typescript",
  ".tsx": "text/tsx",
  ".jsx": "text/jsx",
  ".json": "application/json",
  ".map": "application/json",
  ".xml": "application/xml",
  ".svg": "image/svg+xml",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".toml": "application/toml",
  ".sh": "application/x-sh",
  ".py": "text/x-python",
  ".rs": "text/rust",
  ".go": "text/x-go",
  ".c": "text/x-c",
  ".h": "text/x-c",
  ".sql": "application/sql",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tgz": "application/gzip",
  ".tar": "application/x-tar",
  ".wasm": "application/wasm",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".mp3": "audio/mpeg",
  ".mp4": "video/mp4",
  ".bin": "application/octet-stream",
};

/** packages/sandbox-container/src/services/file-service.ts TEXT_MIME_TYPES. */
const TEXT_APPLICATION_TYPES = new Set([
  "application/ecmascript",
  "application/javascript",
  "application/json",
  "application/json-seq",
  "application/rtf",
  "application/sql",
  "application/toml",
  "application/typescript",
  "application/x-empty",
  "application/x-httpd-php",
  "application/x-javascript",
  "application/x-sh",
  "application/x-shellscript",
  "application/x-typescript",
  "application/x-yaml",
  "application/xml",
  "application/xml-dtd",
  "application/xml-external-parsed-entity",
  "application/yaml",
  "inode/x-empty",
]);

const SNIFF_BYTES = 8192;

export function isBinaryMimeType(mimeType: string): boolean {
  const normalized = (mimeType.split(";")[0] ?? "").trim().toLowerCase();
  const subtype = normalized.split("/")[1] ?? "";
  return !(
    normalized.startsWith("text/") ||
    TEXT_APPLICATION_TYPES.has(normalized) ||
    subtype.endsWith("+json") ||
    subtype.endsWith("+xml")
  );
}

/** What `file --mime-type` would roughly say: empty, text (valid UTF-8 without NUL) or binary. */
async function sniff(path: string, size: number): Promise<string> {
  if (size === 0) return "inode/x-empty";
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(Math.min(SNIFF_BYTES, size));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead);
    if (head.includes(0)) return "application/octet-stream";
    try {
      // Streaming mode: a multi-byte character cut at the sniff boundary is not a decoding error.
      new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: bytesRead < size });
      return "text/plain";
    } catch {
      return "application/octet-stream";
    }
  } finally {
    await handle.close();
  }
}

export async function detectMimeType(path: string, size: number): Promise<string> {
  const known = BY_EXTENSION[extname(path).toLowerCase()];
  if (known && known !== "application/octet-stream") return known;
  return sniff(path, size);
}
