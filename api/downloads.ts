/**
 * Streams a stored object (stdout, stderr) or an artifact (a slice of its attempt's pack) from R2
 * with the headers a download needs: Content-Type, Content-Length, ETag, Content-Disposition, and
 * Range and If-None-Match support.
 */
import type { JobRecord } from "../schemas/job";
import { type PackedArtifact, readPack } from "../storage/artifactPack";
import { ApiError, ErrorCode } from "./errors";

export interface DownloadOptions {
  /** Suggested file name; with `attachment`, browsers and curl -OJ save under it. */
  filename: string;
  disposition: "inline" | "attachment";
  /** Used when the object has no stored content type. */
  fallbackContentType?: string;
}

/** `attachment; filename="a.txt"; filename*=UTF-8''a.txt`, safe for any file name. */
export function contentDisposition(kind: "inline" | "attachment", filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export async function serveObject(bucket: R2Bucket, key: string, request: Request, options: DownloadOptions): Promise<Response> {
  let object: R2Object | R2ObjectBody | null;
  try {
    object = await bucket.get(key, { range: request.headers, onlyIf: request.headers });
  } catch {
    // R2 rejects a range that starts past the end of the object.
    const head = await bucket.head(key);
    if (!head) throw new ApiError(404, ErrorCode.FILE_NOT_FOUND, `No stored object for ${options.filename}`);
    return rangeNotSatisfiable(head.size);
  }
  if (!object) throw new ApiError(404, ErrorCode.FILE_NOT_FOUND, `No stored object for ${options.filename}`);
  // Some R2 implementations answer a range that starts past the end with the whole object.
  const rangeStart = /^bytes=(\d+)-/.exec(request.headers.get("range") ?? "")?.[1];
  if (rangeStart !== undefined && Number(rangeStart) >= object.size) {
    if ("body" in object) await object.body.cancel();
    return rangeNotSatisfiable(object.size);
  }

  const headers = new Headers();
  object.writeHttpMetadata(headers);
  if (!headers.has("content-type")) headers.set("content-type", options.fallbackContentType ?? "application/octet-stream");
  headers.set("etag", object.httpEtag);
  headers.set("accept-ranges", "bytes");
  headers.set("content-disposition", contentDisposition(options.disposition, options.filename));

  if (!("body" in object)) {
    // A precondition (If-None-Match, If-Match, ...) decided there is nothing to send.
    return new Response(null, { status: request.headers.has("if-none-match") ? 304 : 412, headers });
  }
  const range = object.range;
  if (request.headers.has("range") && range) {
    const { offset, length } = resolveRange(range, object.size);
    headers.set("content-range", `bytes ${offset}-${offset + length - 1}/${object.size}`);
    headers.set("content-length", String(length));
    return new Response(object.body, { status: 206, headers });
  }
  headers.set("content-length", String(object.size));
  return new Response(object.body, { status: 200, headers });
}

/**
 * One artifact: a range read of its pack. Its ETag is its SHA-256, so it is the same for the same
 * bytes. One `bytes=` range is served as 206; several, or a header that does not parse, get the
 * whole file, as RFC 9110 lets a server do.
 */
export async function serveArtifact(
  bucket: R2Bucket,
  record: JobRecord,
  artifact: PackedArtifact,
  request: Request,
  options: Pick<DownloadOptions, "filename" | "disposition">,
): Promise<Response> {
  const etag = `"${artifact.sha256}"`;
  const headers = new Headers({
    "content-type": artifact.contentType,
    etag,
    "accept-ranges": "bytes",
    "content-disposition": contentDisposition(options.disposition, options.filename),
  });
  const ifNoneMatch = request.headers.get("if-none-match");
  if (ifNoneMatch?.split(",").some((tag) => ["*", etag].includes(tag.trim().replace(/^W\//, "")))) {
    return new Response(null, { status: 304, headers });
  }
  const range = parseByteRange(request.headers.get("range"), artifact.size);
  if (range === "unsatisfiable") return rangeNotSatisfiable(artifact.size);
  const { offset, length } = range ?? { offset: 0, length: artifact.size };
  if (range) headers.set("content-range", `bytes ${offset}-${offset + length - 1}/${artifact.size}`);
  headers.set("content-length", String(length));
  const status = range ? 206 : 200;
  if (length === 0 || request.method === "HEAD") return new Response(null, { status, headers });
  const slice = await readPack(bucket, record, { offset: artifact.offset + offset, length });
  if (!slice) throw new Error(`the artifact pack of job ${record.id} is missing from storage`);
  return new Response(slice.body, { status, headers });
}

/** A single `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range; undefined means the whole file. */
function parseByteRange(header: string | null, size: number): { offset: number; length: number } | "unsatisfiable" | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const offset = Number(first);
  if (last !== "" && Number(last) < offset) return undefined;
  if (offset >= size) return "unsatisfiable";
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  return { offset, length: end - offset + 1 };
}

/** R2 reports a range as offset/length or as a suffix; turn either into offset and length. */
function resolveRange(range: R2Range, size: number): { offset: number; length: number } {
  if ("suffix" in range && range.suffix !== undefined) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  const offset = "offset" in range && range.offset !== undefined ? range.offset : 0;
  const length = "length" in range && range.length !== undefined ? range.length : size - offset;
  return { offset, length: Math.min(length, size - offset) };
}

function rangeNotSatisfiable(size: number): Response {
  return new Response(
    JSON.stringify({ error: { code: ErrorCode.RANGE_NOT_SATISFIABLE, message: `Range not satisfiable; the object is ${size} bytes` } }),
    { status: 416, headers: { "content-type": "application/json", "content-range": `bytes */${size}` } },
  );
}
