/**
 * Collects a run job's artifacts: files below its cwd that match its glob patterns, uploaded
 * to R2 with content type and SHA-256, within the per-job count and size caps. Every file left
 * out is reported with the reason.
 */
import { getMimeType } from "hono/utils/mime";
import picomatch from "picomatch";
import { type SandboxFileInfo, SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { relativeTo } from "../schemas/ids";
import type { ArtifactRef, SkippedArtifact } from "../schemas/job";
import { type JobAttempt, putArtifact } from "../storage/outputs";

export interface ArtifactLimits {
  maxFiles: number;
  maxTotalBytes: number;
}

export interface CollectedArtifacts {
  artifacts: ArtifactRef[];
  skipped: SkippedArtifact[];
}

/** Artifacts uploaded at once: enough to overlap reads and writes, few enough to bound memory. */
const UPLOAD_CONCURRENCY = 4;

/** Maps with at most `limit` calls in flight; results keep the input order. */
async function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  // One iterator shared by the workers: each takes the next item when it is free.
  const pending = items.entries();
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (const [index, item] of pending) results[index] = await fn(item);
  });
  await Promise.all(workers);
  return results;
}

/**
 * Lists only the directories the patterns can match in (`dist/**` lists dist/, not a whole
 * node_modules tree beside it); a directory that does not exist holds no artifacts.
 */
async function listUnder(sandbox: SandboxPort, cwd: string, patterns: string[]): Promise<SandboxFileInfo[]> {
  const bases = patterns.map((pattern) => {
    const { base, isGlob } = picomatch.scan(pattern);
    const dir = isGlob ? base : base.slice(0, Math.max(0, base.lastIndexOf("/")));
    return dir ? `${cwd === "/" ? "" : cwd}/${dir}` : cwd;
  });
  // A base inside another base is listed with it.
  const roots = [...new Set(bases)].filter((base) => !bases.some((other) => other !== base && base.startsWith(`${other}/`)));
  const listings = await Promise.all(
    roots.map((root) =>
      sandbox.listFiles(root).catch((error: unknown) => {
        if (error instanceof SandboxOperationError && !error.retryable) return [];
        throw error;
      }),
    ),
  );
  return listings.flat().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function contentTypeFor(path: string): string {
  return getMimeType(path) ?? "application/octet-stream";
}

export async function collectArtifacts(
  sandbox: SandboxPort,
  bucket: R2Bucket,
  job: { at: JobAttempt; cwd: string; patterns: string[] },
  limits: ArtifactLimits,
): Promise<CollectedArtifacts> {
  const result: CollectedArtifacts = { artifacts: [], skipped: [] };
  if (job.patterns.length === 0) return result;

  // `!pattern` excludes what the other patterns include, as in CI tools' artifact paths.
  const includes = job.patterns.filter((pattern) => !pattern.startsWith("!"));
  const excluded = picomatch(
    job.patterns.filter((pattern) => pattern.startsWith("!")).map((pattern) => pattern.slice(1)),
    { dot: true },
  );
  // A plain path (no glob) that names a directory collects everything in it.
  const matchers = includes.map((pattern) => {
    const globs = picomatch.scan(pattern).isGlob ? [pattern] : [pattern, `${pattern}/**`];
    return { pattern, matches: picomatch(globs, { dot: true }), used: false };
  });
  const files = await listUnder(sandbox, job.cwd, includes);

  // Choose first, in listing order, so the caps decide the same way every time; then upload.
  const chosen: { path: string; sandboxPath: string }[] = [];
  let chosenBytes = 0;
  for (const file of files) {
    const path = relativeTo(job.cwd, file.path);
    if (path === undefined) continue;
    const matching = matchers.filter((matcher) => matcher.matches(path));
    if (matching.length === 0 || excluded(path)) continue;
    for (const matcher of matching) matcher.used = true;

    if (chosen.length >= limits.maxFiles) {
      result.skipped.push({ path, reason: `artifact count limit reached (${limits.maxFiles} files per job)` });
    } else if (chosenBytes + file.size > limits.maxTotalBytes) {
      result.skipped.push({
        path,
        reason: `total artifact size limit reached (${limits.maxTotalBytes} bytes per job); this file is ${file.size} bytes`,
      });
    } else {
      chosen.push({ path, sandboxPath: file.path });
      chosenBytes += file.size;
    }
  }

  const uploads = await mapConcurrently(chosen, UPLOAD_CONCURRENCY, async ({ path, sandboxPath }) => {
    const contentType = contentTypeFor(path);
    try {
      const stream = await sandbox.readFile(sandboxPath);
      const sha256 = await putArtifact(bucket, job.at, path, stream, contentType);
      return { artifact: { path, size: stream.size, contentType, sha256, mode: stream.mode } };
    } catch (error) {
      // A file that vanished or changed size mid-upload is reported, not fatal to the job.
      return { skipped: { path, reason: `could not be uploaded: ${error instanceof Error ? error.message : String(error)}` } };
    }
  });
  for (const upload of uploads) {
    if (upload.artifact) result.artifacts.push(upload.artifact);
    else result.skipped.push(upload.skipped);
  }
  for (const matcher of matchers) {
    if (!matcher.used) result.skipped.push({ path: matcher.pattern, reason: "pattern matched no files" });
  }
  return result;
}
