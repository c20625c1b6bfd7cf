/**
 * `npm run bench`: starts the local stack (as `npm run dev` does, in its own process group, state
 * on tmpfs when there is one) and prints a table in which every figure stands beside its physical
 * floor measured in the same run at the same concurrency, and their ratio. Asserts no timing;
 * exits non-zero only when a job or a call fails. Options: --jobs, --concurrency, --quick, --verbose, --artifact-mib,
 * and --only submit,batch,fast-output for just those rows (each still beside its floor from the same run;
 * fast-output in both modes).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DEFAULT_REFERENCE_SERVER } from "../container/local/containerServer";
import { startDevProcess } from "../scripts/devProcess";
import { portAcceptsConnections } from "../scripts/processes";
import { measureArtifact } from "./artifact";
import { bubblewrapFloor } from "./bubblewrap";
import { measureLogLatency, measureUpload } from "./ciFeatures";
import { stopStack, track } from "./cleanup";
import { withCpu, withOwnChildrenCpu } from "./cpu";
import { measureCrashRecovery } from "./crash";
import { measureFastOutput } from "./fastOutput";
import { measureHostAlone } from "./hostAlone";
import { stackMemory } from "./memory";
import { BENCH_MAX_CONTAINERS, type BenchPart, parseBenchOptions } from "./options";
import {
  batchAccept,
  endToEndLatency,
  headOfLine,
  headOfLineFloor,
  requestFloor,
  submitLatencyWithKey,
  throughput,
  warmUp,
} from "./pipeline";
import { progress } from "./progress";
import { type Row, renderTable } from "./report";
import { batchAcceptRow, buildRows, fastOutputRow, type Measurements, submitRows, throughputRows } from "./rows";

const PORTS = { api: 18787, host: 18788, hostAlone: 18789, crashApi: 18797, crashHost: 18798, referenceApi: 18777, referenceHost: 18778 };

/**
 * The stack's settings for the benchmark: the artifact cap raised above the 1 GiB artifact, no
 * line printed per request (its output goes nowhere; printing costs the Worker's thread), and
 * no cap on containers, the account's or a tenant's: its phases use more sandboxes within the
 * host's idle time than wrangler.jsonc's max_instances, and it measures the stack, not the caps.
 */
const STACK_ENV = {
  ARTIFACT_MAX_TOTAL_BYTES: String(2 * 1024 * 1024 * 1024),
  ARTIFACT_SANDBOX_LOG_LEVEL: "warn",
  SANDBOX_MAX_CONTAINERS: String(BENCH_MAX_CONTAINERS),
  // The state is in /dev/shm, where a workspace's files count as its container's memory: the
  // 1 GiB artifact and its pack in the container's /tmp would pass the 2 GiB default.
  SANDBOX_MEMORY_MB: "4096",
  TENANT_MAX_CONTAINERS: String(BENCH_MAX_CONTAINERS),
};

/** An API key for tenant `bench`, made as a user makes one (`npm run keys`), in the stack's state. */
async function createBenchKey(stateDir: string): Promise<string> {
  const { stdout } = await promisify(execFile)("node_modules/.bin/tsx", ["scripts/keys.ts", "create", "bench"], {
    env: { ...process.env, ARTIFACT_SANDBOX_STATE_DIR: stateDir },
  });
  const key = stdout.trim().split("\n").at(-1);
  if (!key?.startsWith("as_live_")) throw new Error(`npm run keys printed no key: ${stdout}`);
  return key;
}

/** The stack a benchmark part measures, on the benchmark's ports, stopped when the run ends. */
async function startBenchStack(stateDir: string, options: ReturnType<typeof parseBenchOptions>) {
  return track(
    await startDevProcess({
      apiPort: PORTS.api,
      hostPort: PORTS.host,
      stateDir,
      env: STACK_ENV,
      output: options.verbose ? "inherit" : "ignore",
    }),
  );
}

async function measurePipeline(
  stateDir: string,
  options: ReturnType<typeof parseBenchOptions>,
): Promise<Omit<Measurements, "hostAlone" | "crash" | "reference">> {
  const { jobs, concurrency } = options;
  const stack = await startBenchStack(stateDir, options);
  const api = stack.apiUrl;
  const stackPid = stack.child.pid;
  if (stackPid === undefined) throw new Error("The bench stack's process has no pid; its CPU and memory cannot be read");
  try {
    progress(`stack up at ${api}; warming up ${concurrency} sandboxes...`);
    await warmUp(api, concurrency);

    progress(`floor: ${options.latencySamples} raw bubblewrap execs of \`true\`, one at a time...`);
    const bwrapSequential = await bubblewrapFloor(stateDir, options.latencySamples, 1);
    progress(`end-to-end latency: ${options.latencySamples} trivial jobs, one at a time...`);
    const endToEnd = await endToEndLatency(api, options.latencySamples);

    progress(`floor: ${jobs} raw bubblewrap execs at concurrency ${concurrency}...`);
    const { result: bwrapParallel, cpu: bwrapParallelCpu } = await withOwnChildrenCpu(() => bubblewrapFloor(stateDir, jobs, concurrency));
    progress(`throughput: ${jobs} trivial jobs at concurrency ${concurrency} across ${concurrency} sandboxes...`);
    const { result: tp, cpu: throughputCpu } = await withCpu(stackPid, () => throughput(api, jobs, concurrency));
    progress(`floor: ${jobs} storage-free requests (404) at concurrency ${concurrency}...`);
    const requests = await requestFloor(api, jobs, concurrency);

    progress(`submit latency with an API key: ${options.latencySamples} submits with a key, alternated with as many without...`);
    const auth = await submitLatencyWithKey(api, await createBenchKey(stateDir), options.latencySamples);

    progress(`head-of-line floor: ${options.headOfLineSamples} trivial jobs in sandbox B, nothing else running...`);
    const holFloor = await headOfLineFloor(api, options.headOfLineSamples);
    progress(`head-of-line: the same while sandbox A runs \`sleep 60\`...`);
    const hol = await headOfLine(api, options.headOfLineSamples);

    progress("upload: a 10 MB tree of 200 files as a .tar.gz, unpacked into a sandbox...");
    const upload = await measureUpload(api, stateDir, 10 * 1000 * 1000);
    progress("live logs: a job printing its clock every 50 ms, followed through GET /v1/jobs/{id}/logs...");
    const logLatency = await measureLogLatency(api, 100);
    const requestOneAtATime = await requestFloor(api, options.latencySamples, 1);
    progress("fast output: `seq 1 1000000` as a job, and raw in bubblewrap...");
    const fastOutput = await measureFastOutput(api, stateDir, "bench-fast-output");

    progress("batch accept: one 100-job batch across 100 new sandboxes, timed until it is accepted...");
    const batchAcceptMs = await batchAccept(api);

    const memory = stackMemory(stackPid);
    progress(`artifact: a ${options.artifactBytes / 2 ** 20} MiB file, created alone and then collected as an artifact...`);
    const artifact = await measureArtifact(api, stackPid, stateDir, options.artifactBytes, options.artifactWaitMs);
    return {
      bwrapSequential,
      endToEnd,
      bwrapParallel,
      bwrapParallelCpu,
      throughput: tp,
      throughputCpu,
      requests,
      requestOneAtATime,
      batchAcceptMs,
      auth,
      upload,
      logLatency,
      fastOutput,
      holFloor,
      hol,
      memory,
      artifact,
    };
  } finally {
    await stopStack(stack);
  }
}

/**
 * Only the parts asked for, on a stack of their own: `submit` warms up its sandboxes, then times
 * each submit of the throughput run (its jobs running meanwhile) and a 404 at the same
 * concurrency; `batch` times a 404 one at a time and a 100-job batch across 100 new sandboxes.
 */
async function measureParts(stateDir: string, options: ReturnType<typeof parseBenchOptions>, parts: BenchPart[]): Promise<Row[]> {
  const { jobs, concurrency } = options;
  const stack = await startBenchStack(stateDir, options);
  const api = stack.apiUrl;
  const rows: Row[] = [];
  try {
    if (parts.includes("throughput") || parts.includes("submit")) {
      progress(`stack up at ${api}; warming up ${concurrency} sandboxes...`);
      await warmUp(api, concurrency);
      progress(`throughput: ${jobs} trivial jobs at concurrency ${concurrency} across ${concurrency} sandboxes...`);
      const run = await withCpu(stack.child.pid, () => throughput(api, jobs, concurrency));
      if (parts.includes("throughput")) {
        progress(`floor: ${jobs} raw bubblewrap execs at concurrency ${concurrency}...`);
        const floorRun = await withOwnChildrenCpu(() => bubblewrapFloor(stateDir, jobs, concurrency));
        const measured = { bwrapParallel: floorRun.result, bwrapParallelCpu: floorRun.cpu, throughput: run.result, throughputCpu: run.cpu };
        rows.push(...throughputRows(measured, options));
      }
      if (parts.includes("submit")) {
        progress(`floor: ${jobs} storage-free requests (404) at concurrency ${concurrency}...`);
        const requests = await requestFloor(api, jobs, concurrency);
        rows.push(...submitRows({ throughput: run.result, requests }, concurrency));
      }
    }
    if (parts.includes("batch")) {
      progress(`floor: ${options.latencySamples} storage-free requests (404), one at a time...`);
      const requestOneAtATime = await requestFloor(api, options.latencySamples, 1);
      progress("batch accept: one 100-job batch across 100 new sandboxes, timed until it is accepted...");
      const batchAcceptMs = await batchAccept(api);
      rows.push(batchAcceptRow({ batchAcceptMs, requestOneAtATime }));
    }
    if (parts.includes("fast-output")) {
      progress("fast output: `seq 1 1000000` as a job, and raw in bubblewrap...");
      rows.push(
        fastOutputRow(
          "a million-line output (`seq 1 1000000`), the job's try",
          await measureFastOutput(api, stateDir, "bench-fast-output"),
        ),
      );
    }
    return rows;
  } finally {
    await stopStack(stack);
  }
}

/**
 * Runs `measure` against a stack with Cloudflare's own container server in every sandbox
 * (SANDBOX_CONTAINER=reference), when its bundle is beside this checkout; undefined without it.
 */
async function withReferenceStack<T>(
  stateDir: string,
  options: ReturnType<typeof parseBenchOptions>,
  measure: (apiUrl: string) => Promise<T>,
): Promise<T | undefined> {
  const serverFile = process.env.SANDBOX_REFERENCE_SERVER || DEFAULT_REFERENCE_SERVER;
  if (!existsSync(serverFile)) {
    progress(`reference mode skipped: no container server bundle at ${serverFile}`);
    return undefined;
  }
  const stack = track(
    await startDevProcess({
      apiPort: PORTS.referenceApi,
      hostPort: PORTS.referenceHost,
      stateDir,
      env: { ...STACK_ENV, SANDBOX_CONTAINER: "reference" },
      output: options.verbose ? "inherit" : "ignore",
    }),
  );
  try {
    return await measure(stack.apiUrl);
  } finally {
    await stopStack(stack);
  }
}

/** The same trivial job and million-line output with Cloudflare's own container server in every sandbox. */
function measureReference(stateDir: string, options: ReturnType<typeof parseBenchOptions>): Promise<Measurements["reference"]> {
  return withReferenceStack(stateDir, options, async (apiUrl) => {
    progress("reference mode: the trivial job one at a time, then `seq 1 1000000`...");
    await warmUp(apiUrl, 1);
    const endToEnd = await endToEndLatency(apiUrl, options.latencySamples);
    const fastOutput = await measureFastOutput(apiUrl, stateDir, "bench-reference-fast-output");
    return { endToEnd, fastOutput };
  });
}

/** `--only fast-output` with Cloudflare's container server: the same row, in a stack of its own. */
async function referenceFastOutputRows(stateRoot: string, options: ReturnType<typeof parseBenchOptions>): Promise<Row[]> {
  const referenceDir = await mkdtemp(join(stateRoot, "artifact-sandbox-reference-"));
  await chmod(referenceDir, 0o711);
  const run = await withReferenceStack(referenceDir, options, (apiUrl) => {
    progress("reference mode: `seq 1 1000000` as a job, and raw in bubblewrap...");
    return measureFastOutput(apiUrl, referenceDir, "bench-reference-fast-output");
  }).finally(() => rm(referenceDir, { recursive: true, force: true }));
  return run ? [fastOutputRow("reference mode: a million-line output, the job's try", run)] : [];
}

/** Refuses to start beside another benchmark or stack on the same ports: their figures would mix. */
async function assertPortsFree(): Promise<void> {
  for (const port of Object.values(PORTS)) {
    if (await portAcceptsConnections(port))
      throw new Error(`Port ${port} is in use: is another \`npm run bench\` (or a stack on its ports) running? Stop it first.`);
  }
}

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2));
  await assertPortsFree();
  // Local state (miniflare's KV/R2/queue files and the workspaces) goes on tmpfs when there is
  // one: the benchmark measures the service, not this machine's disk flushes.
  const stateRoot = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const stateDir = await mkdtemp(join(stateRoot, "artifact-sandbox-bench-"));
  const crashDir = await mkdtemp(join(stateRoot, "artifact-sandbox-crash-"));
  // Sandboxes run as their own uids and must traverse to their workspaces below these.
  await Promise.all([chmod(stateDir, 0o711), chmod(crashDir, 0o711)]);
  try {
    progress(`state in ${stateDir}; starting the stack...`);
    if (options.only) {
      const rows = await measureParts(stateDir, options, options.only);
      if (options.only.includes("fast-output")) rows.push(...(await referenceFastOutputRows(stateRoot, options)));
      console.log(`\nartifact-sandbox local benchmark (${options.only.join(", ")} only): ${cpus().length} cores, state on ${stateRoot}\n`);
      console.log(renderTable(rows));
      return;
    }
    const pipeline = await measurePipeline(stateDir, options);
    progress(
      `local host alone: ${options.jobs} SDK-protocol execs of \`true\` through the Front API at concurrency ${options.concurrency}...`,
    );
    const hostAlone = await measureHostAlone(stateDir, PORTS.hostAlone, options.jobs, options.concurrency);
    const referenceDir = await mkdtemp(join(stateRoot, "artifact-sandbox-reference-"));
    await chmod(referenceDir, 0o711);
    const reference = await measureReference(referenceDir, options).finally(() => rm(referenceDir, { recursive: true, force: true }));
    const crash = options.crash ? await measureCrashRecovery(crashDir, PORTS.crashApi, PORTS.crashHost) : undefined;

    console.log(
      `\nartifact-sandbox local benchmark: ${cpus().length} cores, state on ${stateRoot}, ${options.jobs} jobs at concurrency ${options.concurrency}\n`,
    );
    console.log(renderTable(buildRows({ ...pipeline, hostAlone, crash, reference }, options)));
    const byRole = Object.entries(pipeline.artifact.growthByRoleKiB).map(([role, kib]) => `${role} ${(kib / 1024).toFixed(0)} MiB`);
    console.log(`\nstack RSS growth during the artifact job, by process at its peak: ${byRole.join(", ")}`);
    if (pipeline.artifact.failure) {
      console.log(`\nartifact run gave no figure: ${pipeline.artifact.failure}`);
      process.exitCode = 1;
    }
    if (crash && (crash.statuses.succeeded ?? 0) !== crash.jobs)
      console.log(`\ncrash recovery: of ${crash.jobs} jobs, ${JSON.stringify(crash.statuses)}`);
    if (crash && (crash.statuses.succeeded ?? 0) !== crash.jobs) process.exitCode = 1;
  } finally {
    await rm(stateDir, { recursive: true, force: true });
    await rm(crashDir, { recursive: true, force: true });
  }
}

// Exits explicitly: a poll or cancel left open against a wedged stack must not keep the benchmark alive.
main().then(
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
