/**
 * Collects a run job's artifacts: files below its cwd that match its glob patterns, within the
 * per-job count and size caps. The sandbox packs the chosen files into one file in a single
 * command (packScripts.ts), which streams into R2 as the attempt's pack with its index
 * (storage/artifactPack.ts): a few sandbox and R2 calls whatever the number of files. Every file
 * left out is reported with the reason.
 */
import { getMimeType } from "hono/utils/mime";
import picomatch from "picomatch";
import { type SandboxFileInfo, SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { relativeTo } from "../schemas/ids";
import type { ArtifactIndex, ArtifactRef, SkippedArtifact } from "../schemas/job";
import { type PackFile, storeArtifactPack } from "../storage/artifactPack";
import type { JobAttempt } from "../storage/outputs";
import { packCommand } from "./packScripts";

export interface ArtifactLimits {
  maxFiles: number;
  maxTotalBytes: number;
}

export interface CollectedArtifacts {
  /** The first artifacts, as the record lists them; `index` has them all (null when there are none). */
  artifacts: ArtifactRef[];
  index: ArtifactIndex | null;
  skipped: SkippedArtifact[];
}

/** Files left out that the record names one by one; past it, one entry counts the rest. */
const SKIPPED_LISTED = 200;

/** `skipped` with at most SKIPPED_LISTED entries: a job that matched 100,000 files must not list them all. */
function capSkipped(skipped: SkippedArtifact[]): SkippedArtifact[] {
  if (skipped.length <= SKIPPED_LISTED) return skipped;
  const kept = skipped.slice(0, SKIPPED_LISTED - 1);
  const rest = skipped.length - kept.length;
  return [...kept, { path: `(${rest} more)`, reason: `${rest} more files were left out; the record lists the first ${kept.length}` }];
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
        // A directory that is not there holds no artifacts; a permission refused is the job's to hear of.
        if (error instanceof SandboxOperationError && !error.retryable && error.code !== "PERMISSION_DENIED") return [];
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
  const skipped: SkippedArtifact[] = [];
  if (job.patterns.length === 0) return { artifacts: [], index: null, skipped };

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

  // Chosen in listing (path) order, so the caps decide the same way every time.
  const chosen: { path: string; sandboxPath: string }[] = [];
  let chosenBytes = 0;
  for (const file of files) {
    const path = relativeTo(job.cwd, file.path);
    if (path === undefined) continue;
    const matching = matchers.filter((matcher) => matcher.matches(path));
    if (matching.length === 0 || excluded(path)) continue;
    for (const matcher of matching) matcher.used = true;

    if (file.notRegular !== undefined) {
      skipped.push({
        path,
        reason:
          file.notRegular === "symlink"
            ? "a symlink, not a regular file: artifacts are regular files (name the file it points to)"
            : `not a regular file (${file.notRegular}): artifacts are regular files`,
      });
    } else if (chosen.length >= limits.maxFiles) {
      skipped.push({ path, reason: `artifact count limit reached (${limits.maxFiles} files per job)` });
    } else if (chosenBytes + file.size > limits.maxTotalBytes) {
      skipped.push({
        path,
        reason: `total artifact size limit reached (${limits.maxTotalBytes} bytes per job); this file is ${file.size} bytes`,
      });
    } else {
      chosen.push({ path, sandboxPath: file.path });
      chosenBytes += file.size;
    }
  }
  for (const matcher of matchers) {
    if (!matcher.used) skipped.push({ path: matcher.pattern, reason: "pattern matched no files" });
  }
  if (chosen.length === 0) return { artifacts: [], index: null, skipped: capSkipped(skipped) };

  const packed = await packInSandbox(sandbox, job.at, chosen);
  skipped.push(...packed.skipped);
  if (packed.files.length === 0) {
    await sandbox.deleteFile(packed.packPath).catch(() => undefined);
    return { artifacts: [], index: null, skipped: capSkipped(skipped) };
  }
  const stored = await storePackFrom(sandbox, packed.packPath, bucket, job.at, packed.files);
  return { artifacts: stored.listed, index: stored.index, skipped: capSkipped(skipped) };
}

/** Where an attempt's files are packed in its sandbox (outside the workspace, so no job sees it). */
function packPathFor(at: JobAttempt): string {
  return `/tmp/.artifacts-${at.jobId}-${at.attempt}.pack`;
}

/** Packs `chosen` into one file in the sandbox; what went in (in order) and what did not, with why. */
async function packInSandbox(sandbox: SandboxPort, at: JobAttempt, chosen: { path: string; sandboxPath: string }[]) {
  const packPath = packPathFor(at);
  const listPath = `${packPath}.list`;
  await sandbox.writeFile(listPath, new TextEncoder().encode(chosen.map((file) => `${file.sandboxPath}\0`).join("")));
  const { stdout } = await sandbox.run(packCommand(listPath, packPath));
  const lines = stdout.split("\n");
  const files: PackFile[] = [];
  const skipped: SkippedArtifact[] = [];
  chosen.forEach(({ path }, index) => {
    const line = lines[index] ?? "- no answer from the packing command";
    const packedFile = /^(\d+) (\d+)$/.exec(line);
    if (packedFile) files.push({ path, size: Number(packedFile[1]), mode: Number(packedFile[2]), contentType: contentTypeFor(path) });
    else skipped.push({ path, reason: `could not be collected: ${line.replace(/^- /, "")}` });
  });
  return { packPath, files, skipped };
}

/** Streams a pack the sandbox made into R2 as the attempt's artifacts, then removes it. */
async function storePackFrom(sandbox: SandboxPort, packPath: string, bucket: R2Bucket, at: JobAttempt, files: PackFile[]) {
  try {
    const pack = await sandbox.readFile(packPath);
    const expected = files.reduce((sum, file) => sum + file.size, 0);
    if (pack.size !== expected) {
      await pack.body.cancel();
      throw new SandboxOperationError("SANDBOX_ERROR", `The artifact pack is ${pack.size} bytes, its files ${expected}`, true);
    }
    return await storeArtifactPack(bucket, at, files, pack.body);
  } finally {
    await sandbox.deleteFile(packPath).catch(() => undefined);
  }
}

/** A file job's read: the one file stored as its attempt's artifacts. */
export async function storeSingleArtifact(sandbox: SandboxPort, bucket: R2Bucket, at: JobAttempt, sandboxPath: string, path: string) {
  const file = await sandbox.readFile(sandboxPath);
  return storeArtifactPack(bucket, at, [{ path, size: file.size, mode: file.mode, contentType: contentTypeFor(path) }], file.body);
}
