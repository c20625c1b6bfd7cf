/**
 * An attempt's artifacts in R2: their bytes one after another in one object (the pack), and an
 * index in path order, in pages of up to 1,000 entries, giving each file's offset in the pack,
 * size, SHA-256 and mode. A file is a range read of the pack; the whole set is one streaming
 * read of it. This keeps a job of 10,000 files within an invocation's operation budget (a
 * handful of writes, not one per file) and needs no archive format on the way in: the offsets
 * are sums of sizes, so nothing parses headers, and the tar download wraps each slice of the
 * pack in a header as it streams (api/artifactArchive.ts). Both objects are written once.
 */
import { z } from "zod";
import { type ArtifactIndex, ArtifactRef, type JobRecord } from "../schemas/job";
import { hex } from "./hex";
import { r2Keys } from "./layout";
import type { JobAttempt } from "./outputs";

/** Entries per index page: a page is read whole to serve one of its files. */
export const INDEX_PAGE_FILES = 1000;
/** Artifacts the record itself lists (and GET /v1/jobs/{id} shows); the index has them all. */
export const RECORD_LISTED_ARTIFACTS = 200;
/** Index pages written at once. */
const PAGE_WRITE_CONCURRENCY = 8;

export const PackedArtifact = ArtifactRef.extend({ offset: z.number().int().min(0) });
export type PackedArtifact = z.infer<typeof PackedArtifact>;
const IndexPage = z.array(PackedArtifact);

/** A file going into the pack, in pack order. */
export interface PackFile {
  path: string;
  size: number;
  mode: number;
  contentType: string;
}

export interface StoredArtifacts {
  /** What the record lists: the first RECORD_LISTED_ARTIFACTS files. */
  listed: ArtifactRef[];
  index: ArtifactIndex;
}

/** Code-unit order, the order of the pack and of its index (and of `<` on strings). */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Stores `files` as the attempt's pack, their bytes read from `body` in the same order and hashed
 * on the way, then its index. `files` must be in path order with no path twice.
 */
export async function storeArtifactPack(
  bucket: R2Bucket,
  at: JobAttempt,
  files: PackFile[],
  body: ReadableStream<Uint8Array>,
): Promise<StoredArtifacts> {
  for (let i = 1; i < files.length; i++) {
    if (comparePaths(files[i - 1]?.path ?? "", files[i]?.path ?? "") >= 0) throw new Error("pack files must be in path order, each once");
  }
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const hasher = new PackHasher(files.map((file) => file.size));
  // Hashed in line, so R2's pace sets the read's (a tee would let one branch buffer the other's share).
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      await hasher.write(chunk);
      controller.enqueue(chunk);
    },
    async flush() {
      await hasher.end();
    },
  });
  const sized = new FixedLengthStream(total);
  await Promise.all([
    body.pipeThrough(hashing).pipeTo(sized.writable),
    bucket.put(r2Keys.artifactPack(at.tenant, at.jobId, at.attempt), sized.readable, {
      httpMetadata: { contentType: "application/octet-stream" },
    }),
  ]);

  let offset = 0;
  const entries = files.map((file, i): PackedArtifact => {
    const entry = { ...file, sha256: hasher.hashes[i] ?? "", offset };
    offset += file.size;
    return entry;
  });
  const pages: PackedArtifact[][] = [];
  for (let start = 0; start < entries.length; start += INDEX_PAGE_FILES) pages.push(entries.slice(start, start + INDEX_PAGE_FILES));
  for (let start = 0; start < pages.length; start += PAGE_WRITE_CONCURRENCY) {
    await Promise.all(
      pages.slice(start, start + PAGE_WRITE_CONCURRENCY).map((page, i) =>
        bucket.put(r2Keys.artifactIndexPage(at.tenant, at.jobId, at.attempt, start + i), JSON.stringify(page), {
          httpMetadata: { contentType: "application/json" },
        }),
      ),
    );
  }
  return {
    listed: entries
      .slice(0, RECORD_LISTED_ARTIFACTS)
      .map(({ path, size, contentType, sha256, mode }) => ({ path, size, contentType, sha256, mode })),
    index: { files: files.length, bytes: total, pageFirstPaths: pages.map((page) => page[0]?.path ?? "") },
  };
}

/** SHA-256 of each file in a stream of their bytes one after another. */
class PackHasher {
  readonly hashes: string[] = [];
  private current?: { digest: DigestStream; writer: WritableStreamDefaultWriter<ArrayBufferView | ArrayBuffer>; left: number };

  constructor(private readonly sizes: number[]) {}

  async write(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.byteLength) {
      const file = await this.nextWithBytesLeft();
      if (!file) throw new Error(`the pack is longer than its ${this.sizes.length} files`);
      const take = Math.min(file.left, chunk.byteLength - at);
      await file.writer.write(chunk.subarray(at, at + take));
      file.left -= take;
      at += take;
    }
  }

  /** After the last byte: every file (empty ones at the end too) must have been whole. */
  async end(): Promise<void> {
    if (await this.nextWithBytesLeft()) throw new Error("the pack ended before its last file did");
  }

  /** The file the next byte belongs to, finishing (hashing) each one before it that is complete. */
  private async nextWithBytesLeft() {
    for (;;) {
      if (this.current && this.current.left > 0) return this.current;
      if (this.current) {
        await this.current.writer.close();
        this.hashes.push(hex(await this.current.digest.digest));
        this.current = undefined;
      }
      const size = this.sizes[this.hashes.length];
      if (size === undefined) return undefined;
      const digest = new crypto.DigestStream("SHA-256");
      this.current = { digest, writer: digest.getWriter(), left: size };
    }
  }
}

/** The attempt a record publishes, whose artifacts it describes. */
function publishedAttempt(record: JobRecord): JobAttempt {
  return { tenant: record.tenant, jobId: record.id, attempt: record.attempts };
}

/** Page `page` of a record's index; throws when it is missing from storage. */
export async function readIndexPage(bucket: R2Bucket, record: JobRecord, page: number): Promise<PackedArtifact[]> {
  const at = publishedAttempt(record);
  const object = await bucket.get(r2Keys.artifactIndexPage(at.tenant, at.jobId, at.attempt, page));
  if (!object) throw new Error(`page ${page} of the artifact index of job ${record.id} is missing from storage`);
  return IndexPage.parse(await object.json());
}

/** A record that lists artifacts but has no index: written before artifacts were packed, its files are not served. */
export function storedUnpacked(record: JobRecord): boolean {
  return record.artifacts.length > 0 && record.artifactIndex === null;
}

export function indexPageCount(record: JobRecord): number {
  return record.artifactIndex?.pageFirstPaths.length ?? 0;
}

/** The artifact at `path`, from the one index page that can hold it. */
export async function findArtifact(bucket: R2Bucket, record: JobRecord, path: string): Promise<PackedArtifact | undefined> {
  const firsts = record.artifactIndex?.pageFirstPaths ?? [];
  // The last page whose first path is at or before `path`.
  let low = 0;
  let high = firsts.length - 1;
  let page = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (comparePaths(firsts[middle] ?? "", path) <= 0) {
      page = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  if (page < 0) return undefined;
  return (await readIndexPage(bucket, record, page)).find((entry) => entry.path === path);
}

/** Every artifact of a record, page by page in path order. */
export async function* packedArtifacts(bucket: R2Bucket, record: JobRecord): AsyncGenerator<PackedArtifact> {
  for (let page = 0; page < indexPageCount(record); page++) yield* await readIndexPage(bucket, record, page);
}

/** The whole pack (`range` unset) or a slice of it; null when it is missing. */
export function readPack(bucket: R2Bucket, record: JobRecord, range?: { offset: number; length: number }): Promise<R2ObjectBody | null> {
  const at = publishedAttempt(record);
  const key = r2Keys.artifactPack(at.tenant, at.jobId, at.attempt);
  return range ? bucket.get(key, { range }) : bucket.get(key);
}
