/** Turns the benchmark's measurements into the table's rows, each figure beside its floor. */
import type { ArtifactRun } from "./artifact";
import type { UploadRun } from "./ciFeatures";
import type { CpuUse, FloorCpu } from "./cpu";
import type { CrashRun } from "./crash";
import type { FastOutputRun } from "./fastOutput";
import type { HostAloneRuns } from "./hostAlone";
import { mib, type StackMemory } from "./memory";
import type { BenchOptions } from "./options";
import type { AuthRun, ThroughputRun } from "./pipeline";
import { mebibytes, ms, type Row, rate, seconds } from "./report";
import { type PoolRun, percentile, perSecond } from "./stats";

export interface Measurements {
  bwrapSequential: PoolRun;
  endToEnd: PoolRun;
  bwrapParallel: PoolRun;
  /** CPU spent during the raw execs at concurrency, and during the throughput run. */
  bwrapParallelCpu: FloorCpu;
  throughput: ThroughputRun;
  throughputCpu: CpuUse;
  requests: PoolRun;
  /** The same storage-free request, one at a time. */
  requestOneAtATime: PoolRun;
  /** Until a 100-job batch across 100 new sandboxes was accepted (202). */
  batchAcceptMs: number;
  auth: AuthRun;
  upload: UploadRun;
  /** Milliseconds from a log line being written to a follower receiving it. */
  logLatency: number[];
  fastOutput: FastOutputRun;
  holFloor: PoolRun;
  hol: PoolRun;
  memory: StackMemory;
  artifact: ArtifactRun;
  hostAlone: HostAloneRuns;
  crash?: CrashRun;
  /** The same jobs with Cloudflare's own container server in the sandboxes, when it is available. */
  reference?: { endToEnd: PoolRun; fastOutput: FastOutputRun };
}

const MB = 1_000_000;

const p = (run: PoolRun | number[], q: number) => percentile(Array.isArray(run) ? run : run.durations, q);

/** The million-line output's try beside the same command raw (`--only fast-output` too). */
export function fastOutputRow(measure: string, run: FastOutputRun): Row {
  return {
    measure,
    value: ms(run.jobMs),
    floor: { what: "the same command, raw bwrap exec", value: ms(run.rawMs) },
    reference: "within 2x",
  };
}

/**
 * Submit latency while the jobs run, beside two floors: a 404 at the same concurrency with nothing
 * running, and a 404 sent by each of the run's workers beside its submit (the same load: the
 * sandboxes' processes share these cores with the Worker). `--only submit` too.
 */
export function submitRows(m: Pick<Measurements, "throughput" | "requests">, concurrency: number): Row[] {
  return [50, 99].flatMap((percentile): Row[] => [
    {
      measure: `submit latency p${percentile} at concurrency ${concurrency} (consumer busy)`,
      value: ms(p(m.throughput.submits, percentile)),
      floor: { what: `404 request p${percentile}, ${concurrency} at once, idle`, value: ms(p(m.requests, percentile)) },
      reference: "within 2x",
    },
    {
      measure: `submit latency p${percentile} at concurrency ${concurrency} (same)`,
      value: ms(p(m.throughput.submits, percentile)),
      floor: { what: `404 request p${percentile} sent beside each submit`, value: ms(p(m.throughput.busyNotFounds, percentile)) },
      reference: "within 2x",
    },
  ]);
}

/**
 * Throughput beside raw execs at the same concurrency, then CPU per job beside CPU per raw exec:
 * at concurrency the two cores are the limit, so that is where the throughput ratio comes from,
 * and the roles say who spends it (`--only throughput` too).
 */
export function throughputRows(
  m: Pick<Measurements, "throughput" | "throughputCpu" | "bwrapParallel" | "bwrapParallelCpu">,
  options: BenchOptions,
): Row[] {
  const jobs = m.throughput.jobs.durations.length;
  const floor = {
    what: `CPU per raw bwrap exec, ${options.concurrency} at once (machine)`,
    value: ms(m.bwrapParallelCpu.machineMs / m.bwrapParallel.durations.length),
  };
  const { byRoleMs } = m.throughputCpu;
  const execsOwnFloor = {
    what: `CPU per raw bwrap exec, ${options.concurrency} at once (the execs' own)`,
    value: ms(m.bwrapParallelCpu.reapedMs / m.bwrapParallel.durations.length),
  };
  const attributed = byRoleMs.sandboxes + byRoleMs.containerServer + byRoleMs.workerd + byRoleMs.host;
  return [
    {
      measure: `throughput, ${jobs} jobs at concurrency ${options.concurrency} (${options.concurrency} sandboxes)`,
      value: rate(perSecond(m.throughput.jobs), "jobs/s"),
      floor: { what: `raw bwrap execs/s, ${options.concurrency} at once`, value: rate(perSecond(m.bwrapParallel), "execs/s") },
      reference: "1x",
    },
    { measure: "CPU per job in the throughput run, whole machine", value: ms(m.throughputCpu.machineMs / jobs), floor },
    {
      measure: "  of it: the sandboxes' scripts and commands (and bwrap, pasta)",
      value: ms(byRoleMs.sandboxes / jobs),
      floor: execsOwnFloor,
    },
    { measure: "  of it: the sandboxes' container server (our agent)", value: ms(byRoleMs.containerServer / jobs), floor },
    { measure: "  of it: workerd (Worker, Durable Objects, simulated KV/R2/Queues)", value: ms(byRoleMs.workerd / jobs), floor },
    { measure: "  of it: the stack's node process (container host, wrangler's dev server)", value: ms(byRoleMs.host / jobs), floor },
    {
      measure: "  of it: outside the stack (the benchmark's client, the kernel's own, other processes)",
      value: ms(Math.max(0, m.throughputCpu.machineMs - attributed) / jobs),
      floor,
    },
  ];
}

/** A 100-job batch across 100 new sandboxes, until accepted, beside a 404 one at a time (`--only batch` too). */
export function batchAcceptRow(m: Pick<Measurements, "batchAcceptMs" | "requestOneAtATime">): Row {
  return {
    measure: "100-job batch accepted, 100 new sandboxes starting",
    value: ms(m.batchAcceptMs),
    floor: { what: "404 request p50, one at a time", value: ms(p(m.requestOneAtATime, 50)) },
    reference: "< 1 s",
  };
}

export function buildRows(m: Measurements, options: BenchOptions): Row[] {
  const c = options.concurrency;
  const bwrapOne = { p50: { what: "raw bwrap exec p50, one at a time", value: ms(p(m.bwrapSequential, 50)) } };
  const bwrapOneP99 = { what: "raw bwrap exec p99, one at a time", value: ms(p(m.bwrapSequential, 99)) };
  const bwrapParallelRate = { what: `raw bwrap execs/s, ${c} at once`, value: rate(perSecond(m.bwrapParallel), "execs/s") };
  const uploadMs = m.artifact.withArtifactMs - m.artifact.commandAloneMs;
  const artifactMiB = m.artifact.bytes / 2 ** 20;
  const rows: Row[] = [
    { measure: "end-to-end latency p50, `true`, one at a time", value: ms(p(m.endToEnd, 50)), floor: bwrapOne.p50, reference: "20-24 ms" },
    { measure: "end-to-end latency p99, `true`, one at a time", value: ms(p(m.endToEnd, 99)), floor: bwrapOneP99, reference: "37-46 ms" },
    ...throughputRows(m, options),
    ...submitRows(m, c),
    batchAcceptRow(m),
    {
      measure: "submit latency p50, one at a time, with an API key",
      value: ms(p(m.auth.withKey, 50)),
      floor: { what: "the same submit without a key", value: ms(p(m.auth.anonymous, 50)) },
      reference: "within 1 ms of no key",
    },
    {
      measure: `upload and unpack a ${(m.upload.bytes / MB).toFixed(1)} MB tree (200 files)`,
      value: ms(m.upload.uploadMs),
      floor: { what: "tar xzf of the same archive", value: ms(m.upload.rawExtractMs) },
    },
    {
      measure: "live log line, written to received, p50",
      value: ms(p(m.logLatency, 50)),
      floor: { what: "404 request p50, one at a time", value: ms(p(m.requestOneAtATime, 50)) },
    },
    {
      measure: "live log line, written to received, p99",
      value: ms(p(m.logLatency, 99)),
      floor: { what: "404 request p99, one at a time", value: ms(p(m.requestOneAtATime, 99)) },
    },
    fastOutputRow("a million-line output (`seq 1 1000000`), the job's try", m.fastOutput),
    {
      measure: `local host alone: exec p50 at concurrency ${c}`,
      value: ms(p(m.hostAlone.parallel, 50)),
      floor: { what: `raw bwrap exec p50, ${c} at once`, value: ms(p(m.bwrapParallel, 50)) },
    },
    {
      measure: `local host alone: execs/s at concurrency ${c}`,
      value: rate(perSecond(m.hostAlone.parallel), "execs/s"),
      floor: bwrapParallelRate,
      reference: "330-370 execs/s",
    },
    { measure: "local host alone: exec p50, one at a time", value: ms(p(m.hostAlone.sequential, 50)), floor: bwrapOne.p50 },
    {
      measure: "local host alone: exec p50, one at a time (vs ping)",
      value: ms(p(m.hostAlone.sequential, 50)),
      floor: { what: "protocol round trip p50 (/api/ping)", value: ms(p(m.hostAlone.ping, 50)) },
      reference: "a few ms over ~1 ms",
    },
    {
      measure: "head-of-line: B's job p50 while A runs `sleep 60`",
      value: ms(p(m.hol, 50)),
      floor: { what: "B's job p50, nothing else running", value: ms(p(m.holFloor, 50)) },
      reference: "< 1 s",
    },
    {
      measure: "head-of-line: B's job p99 while A runs `sleep 60`",
      value: ms(p(m.hol, 99)),
      floor: { what: "B's job p99, nothing else running", value: ms(p(m.holFloor, 99)) },
      reference: "< 1 s",
    },
    {
      measure: `artifact collection, ${artifactMiB} MiB file`,
      value: rate(m.artifact.bytes / MB / (uploadMs / 1000), "MB/s"),
      floor: { what: "cp + sync, same filesystem", value: rate(m.artifact.bytes / MB / (m.artifact.rawCopyMs / 1000), "MB/s") },
    },
    {
      measure: `stack RSS growth during the ${artifactMiB} MiB artifact job`,
      value: mebibytes(mib(m.artifact.stackRssGrowthKiB)),
      reference: "< 100 MB",
    },
    { measure: "memory: workerd peak RSS", value: mebibytes(mib(m.memory.workerdPeakRssKiB)), reference: "430-490 MiB" },
    { measure: "memory: container host process peak RSS", value: mebibytes(mib(m.memory.hostPeakRssKiB)) },
    {
      measure: `memory: per sandbox container PSS (bwrap + agent; ${m.memory.containers} live)`,
      value: mebibytes(mib(m.memory.containersPssKiB) / Math.max(1, m.memory.containers)),
      reference: "about 8 MiB",
    },
  ];
  if (m.reference) {
    rows.push(
      {
        measure: "reference mode: end-to-end latency p50, `true`",
        value: ms(p(m.reference.endToEnd, 50)),
        floor: bwrapOne.p50,
      },
      fastOutputRow("reference mode: a million-line output, the job's try", m.reference.fastOutput),
    );
  }
  if (m.crash) {
    rows.push({
      measure: `crash recovery: restart until all ${m.crash.jobs} jobs finished (${m.crash.statuses.succeeded ?? 0} succeeded)`,
      value: seconds(m.crash.recoverySeconds),
      floor: { what: "the restarted stack's start-up", value: seconds(m.crash.startupSeconds) },
      reference: "< 60 s",
    });
  }
  return rows;
}
