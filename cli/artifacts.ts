/**
 * Saving a job's artifacts under a local directory at their paths relative to the job's cwd,
 * each checked against the SHA-256 in its record as it streams and given its recorded mode.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import { dirname, relative, resolve, sep } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import picomatch from "picomatch";
import type { ArtifactSandboxClient, JobView } from "../client";

export type Artifact = JobView["artifacts"][number];

/** The artifacts matching any of the globs (all of them when there are none). */
export function selectArtifacts(artifacts: Artifact[], globs: string[]): Artifact[] {
  if (globs.length === 0) return artifacts;
  const matches = picomatch(globs, { dot: true });
  return artifacts.filter((artifact) => matches(artifact.path));
}

/** Downloads each artifact into `outDir`; returns the local paths written. */
export async function saveArtifacts(client: ArtifactSandboxClient, artifacts: Artifact[], outDir: string): Promise<string[]> {
  const root = resolve(outDir);
  const written: string[] = [];
  for (const artifact of artifacts) {
    const target = resolve(root, artifact.path);
    // A record names paths relative to the job's cwd; anything that would land outside outDir is refused.
    if (relative(root, target).startsWith(`..${sep}`) || relative(root, target) === "..") {
      throw new Error(`Refusing artifact path ${artifact.path}: it points outside ${outDir}`);
    }
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    const hash = createHash("sha256");
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const body = await client.download(artifact.url);
    await pipeline(chunksOf(body), hashing, createWriteStream(partial));
    const sha256 = hash.digest("hex");
    if (sha256 !== artifact.sha256) {
      await rm(partial, { force: true });
      throw new Error(
        `Artifact ${artifact.path} arrived corrupted (sha256 ${sha256}, the record says ${artifact.sha256}); download it again`,
      );
    }
    await chmod(partial, artifact.mode & 0o777);
    await rename(partial, target);
    written.push(target);
  }
  return written;
}

/** A web stream as an async iterable (the DOM typings of ReadableStream lack the iterator Node has). */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
