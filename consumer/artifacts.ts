/**
 * Collects a run job's artifacts: files below its cwd that match its glob patterns, uploaded
 * to R2 with content type and SHA-256, within the per-job count and size caps. Every file left
 * out is reported with the reason.
 */
import { getMimeType } from "hono/utils/mime";
import picomatch from "picomatch";
import type { SandboxPort } from "../sandbox/port";
import { relativeTo } from "../schemas/ids";
import type { ArtifactRef, SkippedArtifact } from "../schemas/job";
import { putArtifact } from "../storage/outputs";

export interface ArtifactLimits {
  maxFiles: number;
  maxTotalBytes: number;
}

export interface CollectedArtifacts {
  artifacts: ArtifactRef[];
  skipped: SkippedArtifact[];
}

export function contentTypeFor(path: string): string {
  return getMimeType(path) ?? "application/octet-stream";
}

export async function collectArtifacts(
  sandbox: SandboxPort,
  bucket: R2Bucket,
  job: { jobId: string; cwd: string; patterns: string[] },
  limits: ArtifactLimits,
): Promise<CollectedArtifacts> {
  const result: CollectedArtifacts = { artifacts: [], skipped: [] };
  if (job.patterns.length === 0) return result;

  const files = await sandbox.listFiles(job.cwd);
  const matchers = job.patterns.map((pattern) => ({ pattern, matches: picomatch(pattern, { dot: true }), used: false }));
  let totalBytes = 0;
  for (const file of files) {
    const path = relativeTo(job.cwd, file.path);
    if (path === undefined) continue;
    const matching = matchers.filter((matcher) => matcher.matches(path));
    if (matching.length === 0) continue;
    for (const matcher of matching) matcher.used = true;

    if (result.artifacts.length >= limits.maxFiles) {
      result.skipped.push({ path, reason: `artifact count limit reached (${limits.maxFiles} files per job)` });
      continue;
    }
    if (totalBytes + file.size > limits.maxTotalBytes) {
      result.skipped.push({
        path,
        reason: `total artifact size limit reached (${limits.maxTotalBytes} bytes per job); this file is ${file.size} bytes`,
      });
      continue;
    }
    const contentType = contentTypeFor(path);
    try {
      const stream = await sandbox.readFile(file.path);
      const sha256 = await putArtifact(bucket, job.jobId, path, stream, contentType);
      result.artifacts.push({ path, size: stream.size, contentType, sha256 });
      totalBytes += stream.size;
    } catch (error) {
      // A file that vanished or changed size mid-upload is reported, not fatal to the job.
      result.skipped.push({ path, reason: `could not be uploaded: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  for (const matcher of matchers) {
    if (!matcher.used) result.skipped.push({ path: matcher.pattern, reason: "pattern matched no files" });
  }
  return result;
}
