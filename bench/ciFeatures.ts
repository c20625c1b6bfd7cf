/**
 * The CI features' figures: uploading and unpacking a 10 MB source tree (against a raw
 * `tar xzf` of the same archive on the same filesystem), and how long a log line takes from
 * the command writing it to a client of GET /v1/jobs/{id}/logs receiving it (against a plain
 * request's round trip through the same stack).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { JobView } from "../schemas/job";
import { awaitFinished, BenchApiError, submitJob } from "./apiClient";

const run = promisify(execFile);

export interface UploadRun {
  bytes: number;
  /** PUT of the archive until its unpacking job has finished. */
  uploadMs: number;
  /** `tar xzf` of the same archive into an empty directory, same filesystem. */
  rawExtractMs: number;
}

/** A tree of 200 files of incompressible data, about `bytes` in all, as a .tar.gz. */
async function makeTree(dir: string, bytes: number): Promise<string> {
  const tree = join(dir, "tree");
  for (let i = 0; i < 200; i++) {
    const sub = join(tree, `pkg-${i % 10}`);
    await mkdir(sub, { recursive: true });
    await run("sh", ["-c", `head -c ${Math.floor(bytes / 200)} /dev/urandom > ${join(sub, `file-${i}.bin`)}`]);
  }
  const archive = join(dir, "tree.tar.gz");
  await run("tar", ["czf", archive, "-C", tree, "."]);
  return archive;
}

export async function measureUpload(apiUrl: string, stateDir: string, bytes: number): Promise<UploadRun> {
  const dir = await mkdtemp(join(stateDir, "upload-"));
  try {
    const archive = await makeTree(dir, bytes);
    const extractTo = join(dir, "extracted");
    await mkdir(extractTo);
    const rawStarted = performance.now();
    await run("tar", ["xzf", archive, "-C", extractTo]);
    const rawExtractMs = performance.now() - rawStarted;

    const body = await readFile(archive);
    const started = performance.now();
    const response = await fetch(`${apiUrl}/v1/sandboxes/bench-upload/archive?path=/workspace/tree`, { method: "PUT", body });
    if (response.status !== 202) throw new BenchApiError(`upload answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    const { id } = JobView.pick({ id: true }).parse(await response.json());
    const job = await awaitFinished(apiUrl, id);
    if (job.status !== "succeeded") throw new BenchApiError(`the upload's job ended ${job.status}: ${job.error?.message}`);
    return { bytes: body.byteLength, uploadMs: performance.now() - started, rawExtractMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A job prints its clock (ns since the epoch) every 50 ms; a follower of its logs notes when
 * each line arrives. Same machine, same clock.
 */
export async function measureLogLatency(apiUrl: string, lines: number): Promise<number[]> {
  const job = await submitJob(apiUrl, "bench-logs", {
    command: `i=0; while [ $i -lt ${lines} ]; do date +%s%N; sleep 0.05; i=$((i+1)); done`,
    timeoutMs: 120_000,
  });
  const latencies: number[] = [];
  const response = await fetch(`${apiUrl}/v1/jobs/${job.id}/logs`);
  if (!response.body) throw new BenchApiError("the log stream has no body");
  const decoder = new TextDecoder();
  let pending = "";
  const reader = response.body.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    const chunk = next.value;
    const receivedAtMs = performance.timeOrigin + performance.now();
    pending += decoder.decode(chunk, { stream: true });
    for (const match of pending.matchAll(/"text":"((?:\d+\\n)+)"/g)) {
      for (const stamp of match[1]?.split("\\n").filter(Boolean) ?? []) latencies.push(receivedAtMs - Number(BigInt(stamp) / 1_000_000n));
    }
    pending = pending.slice(pending.lastIndexOf("\n\n") + 2);
  }
  await awaitFinished(apiUrl, job.id);
  if (latencies.length < lines / 2) throw new BenchApiError(`only ${latencies.length} of ${lines} log lines arrived live`);
  return latencies;
}
