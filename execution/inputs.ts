/**
 * A run job's inputs: artifacts of other jobs of the same tenant (its needs, so finished by now)
 * copied into this job's sandbox before its command runs, byte-exact, under each input's `path`
 * with the artifact's own relative path and permission bits. The chosen files' bytes go into the
 * sandbox as one stream, cut into files there by one command (packScripts.ts), so 10,000 files
 * cost a few sandbox calls.
 */
import picomatch from "picomatch";
import type { SandboxPort } from "../sandbox/port";
import type { JobError, JobInput, JobRecord } from "../schemas/job";
import { type PackedArtifact, packedArtifacts, readPack, storedUnpacked } from "../storage/artifactPack";
import { unpackCommand } from "./packScripts";

export interface InputContext {
  sandbox: SandboxPort;
  bucket: R2Bucket;
  /** A job of this job's tenant (the only tenant whose jobs an input can name). */
  readJob: (jobId: string) => Promise<JobRecord | undefined>;
}

/** Stretches of the pack read one range each; past this many, the whole pack is read once and thinned. */
const MAX_RANGE_READS = 32;

interface ByteRun {
  offset: number;
  length: number;
}

/** Copies every input in; returns the error that ends the job when one cannot be had. */
export async function copyInputs(context: InputContext, inputs: JobInput[]): Promise<JobError | undefined> {
  for (const input of inputs) {
    const source = await context.readJob(input.from);
    if (source?.status !== "succeeded") {
      return {
        code: "INPUT_UNAVAILABLE",
        message: `Input from job ${input.from} is not available: ${source ? `that job ${source.status}` : "no such job (or past its retention)"}`,
      };
    }
    if (storedUnpacked(source)) {
      return {
        code: "INPUT_UNAVAILABLE",
        message: `The artifacts of job ${source.id} were stored in an earlier layout; run that job again`,
      };
    }
    const matches = picomatch(input.artifacts, { dot: true });
    const chosen: PackedArtifact[] = [];
    for await (const artifact of packedArtifacts(context.bucket, source)) if (matches(artifact.path)) chosen.push(artifact);
    if (chosen.length === 0) continue;

    const base = input.path === "/" ? "" : input.path;
    const work = `/tmp/.inputs-${crypto.randomUUID()}`;
    const body = await chosenBytes(context.bucket, source, runsOf(chosen));
    if (!body) return { code: "INPUT_UNAVAILABLE", message: `The artifacts of job ${source.id} are gone from storage` };
    const manifest = chosen.map((artifact) => [artifact.size, artifact.mode, `${base}/${artifact.path}`]);
    await context.sandbox.writeFile(`${work}.json`, new TextEncoder().encode(JSON.stringify(manifest)));
    await context.sandbox.writeFileFromStream(`${work}.pack`, body);
    await context.sandbox.run(unpackCommand(`${work}.json`, `${work}.pack`));
  }
  return undefined;
}

/** The chosen files (in pack order) as stretches of adjacent bytes. */
function runsOf(chosen: PackedArtifact[]): ByteRun[] {
  const runs: ByteRun[] = [];
  for (const { offset, size } of chosen) {
    const last = runs[runs.length - 1];
    if (last && last.offset + last.length === offset) last.length += size;
    else runs.push({ offset, length: size });
  }
  return runs.filter((run) => run.length > 0);
}

/** The bytes of `runs`, one after another: a range read each when few, else the whole pack thinned; null when it is gone. */
async function chosenBytes(bucket: R2Bucket, record: JobRecord, runs: ByteRun[]): Promise<ReadableStream<Uint8Array> | null> {
  if (runs.length === 0) return new Blob([]).stream();
  if (runs.length > MAX_RANGE_READS) {
    const pack = await readPack(bucket, record);
    return pack ? pack.body.pipeThrough(keepOnly(runs)) : null;
  }
  const first = await readPack(bucket, record, runs[0]);
  if (!first) return null;
  let current: ReadableStreamDefaultReader<Uint8Array> = first.body.getReader();
  let next = 1;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const read = await current.read();
        if (!read.done) return controller.enqueue(read.value);
        const run = runs[next++];
        if (!run) return controller.close();
        const object = await readPack(bucket, record, run);
        if (!object) throw new Error(`the artifact pack of job ${record.id} vanished while it was read`);
        current = object.body.getReader();
      }
    },
    async cancel(reason) {
      await current.cancel(reason);
    },
  });
}

/** Passes on only the bytes inside `runs` (in order, not overlapping) of the stream it is given. */
function keepOnly(runs: ByteRun[]): TransformStream<Uint8Array, Uint8Array> {
  let position = 0;
  let index = 0;
  return new TransformStream({
    transform(chunk, controller) {
      const end = position + chunk.byteLength;
      for (let run = runs[index]; run && run.offset < end; run = runs[index]) {
        const from = Math.max(run.offset, position);
        const to = Math.min(run.offset + run.length, end);
        if (to > from) controller.enqueue(chunk.subarray(from - position, to - position));
        if (run.offset + run.length > end) break;
        index++;
      }
      position = end;
    },
  });
}
