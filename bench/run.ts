/**
 * `npm run bench`: starts the local stack on its own ports and state, measures submit latency,
 * end-to-end latency and throughput of trivial jobs, and the raw cost of one bubblewrap exec
 * as the baseline. Prints figures; asserts nothing about timing.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalStack, waitUntilServing } from "../scripts/localStack";
import { descendantsOf, processes } from "../scripts/processes";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    latencySamples: { type: "string", default: "200" },
  },
});
const JOBS = Number(values.jobs);
const CONCURRENCY = Number(values.concurrency);
const LATENCY_SAMPLES = Number(values.latencySamples);
const TRIVIAL_JOB = JSON.stringify({ type: "run", command: "true" });

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function submit(apiUrl: string, sandboxId: string): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/sandboxes/${sandboxId}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: TRIVIAL_JOB,
  });
  if (response.status !== 202) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
  const body: unknown = await response.json();
  if (typeof body !== "object" || body === null || !("id" in body) || typeof body.id !== "string")
    throw new Error("submit answered no job id");
  return body.id;
}

/** Polls until the job's finished status is readable; returns the status. */
async function awaitFinished(apiUrl: string, jobId: string): Promise<string> {
  for (;;) {
    const response = await fetch(`${apiUrl}/v1/jobs/${jobId}?wait=30`);
    const body: unknown = await response.json();
    const status = typeof body === "object" && body !== null && "status" in body ? String(body.status) : "unknown";
    if (status !== "queued" && status !== "running") return status;
  }
}

/** Runs `count` tasks with `concurrency` workers; returns each task's duration in ms. */
async function pool(count: number, concurrency: number, task: (index: number, worker: number) => Promise<void>): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        const index = next++;
        const started = performance.now();
        await task(index, worker);
        durations.push(performance.now() - started);
      }
    }),
  );
  return durations;
}

/** One raw bubblewrap exec of `true` in a fresh namespace: the physical floor of a sandboxed command. */
function rawBubblewrapExec(workspace: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "bwrap",
      [
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        workspace,
        "/workspace",
        "/bin/true",
      ],
      { stdio: "ignore" },
    );
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}`))));
  });
}

async function bubblewrapBaseline(samples: number): Promise<number[]> {
  const workspace = await mkdtemp(join(tmpdir(), "bench-bwrap-"));
  try {
    const durations: number[] = [];
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      await rawBubblewrapExec(workspace);
      durations.push(performance.now() - started);
    }
    return durations;
  } finally {
    await rm(workspace, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  // Local state (miniflare's KV/R2/queue files and the workspaces) goes on tmpfs when there is
  // one: the benchmark measures the service, not this machine's disk flushes.
  const stateRoot = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const stateDir = await mkdtemp(join(stateRoot, "artifact-sandbox-bench-"));
  const stack = await startLocalStack({ apiPort: 18787, hostPort: 18788, stateDir, wranglerOutput: "ignore" });
  try {
    await waitUntilServing(stack.apiUrl);
    const api = stack.apiUrl;
    console.log(`local stack up at ${api}; warming up...`);
    await pool(64, 8, async (_, worker) => void (await awaitFinished(api, await submit(api, `bench-warm-${worker}`))));

    console.log(`end-to-end latency: ${LATENCY_SAMPLES} trivial jobs, one at a time...`);
    const endToEnd = await pool(LATENCY_SAMPLES, 1, async () => void (await awaitFinished(api, await submit(api, "bench-latency"))));

    console.log(`submit latency: ${JOBS} submits at concurrency ${CONCURRENCY}...`);
    const submitIds: string[] = [];
    const submits = await pool(JOBS, CONCURRENCY, async (_, worker) => void submitIds.push(await submit(api, `bench-submit-${worker}`)));
    await pool(submitIds.length, CONCURRENCY, async (index) => void (await awaitFinished(api, submitIds[index] ?? "")));

    console.log(`throughput: ${JOBS} trivial jobs end to end at concurrency ${CONCURRENCY}...`);
    const failures: string[] = [];
    const throughputStarted = performance.now();
    await pool(JOBS, CONCURRENCY, async (_, worker) => {
      const status = await awaitFinished(api, await submit(api, `bench-tp-${worker}`));
      if (status !== "succeeded") failures.push(status);
    });
    const throughputSeconds = (performance.now() - throughputStarted) / 1000;
    const jobsPerSecond = JOBS / throughputSeconds;

    console.log(`local sandbox host alone: ${JOBS} execs of \`true\` at concurrency ${CONCURRENCY} through its HTTP API...`);
    const hostStarted = performance.now();
    const hostExecs = await pool(JOBS, CONCURRENCY, async (_, worker) => {
      // The SDK container protocol, straight to the host: what the Sandbox Durable Object sends.
      const response = await fetch(`${stack.hostUrl}/v1/containers/bench-host-${worker}/ports/3000/api/execute`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.hostToken}`, "content-type": "application/json" },
        body: JSON.stringify({ command: "true", sessionId: "bench", cwd: "/workspace" }),
      });
      await response.arrayBuffer();
    });
    const hostPerSecond = JOBS / ((performance.now() - hostStarted) / 1000);

    const all = processes();
    const workerd = descendantsOf(stack.wrangler.pid ?? -1, all).filter((info) => info.commandLine.includes("workerd"));
    const workerdPeakMiB = workerd.reduce((sum, info) => sum + info.peakRssKiB, 0) / 1024;
    // Each session is two bwrap processes and the node agent they run; all are counted.
    const sessionProcesses = all.filter((info) => info.commandLine.includes("sandbox-agent/agent.mjs"));
    const sessions = sessionProcesses.filter((info) => info.commandLine.startsWith("/run/sandbox-agent/node")).length;
    const sessionsMiB = sessionProcesses.reduce((sum, info) => sum + info.pssKiB, 0) / 1024;
    const hostPeakMiB = (all.find((info) => info.pid === process.pid)?.peakRssKiB ?? 0) / 1024;

    console.log("baseline: raw bubblewrap exec of `true`...");
    const bwrap = await bubblewrapBaseline(LATENCY_SAMPLES);
    const bwrapPerSecond = 1000 / (bwrap.reduce((a, b) => a + b, 0) / bwrap.length);

    const ms = (value: number) => `${value.toFixed(1)} ms`;
    console.log(`\nartifact-sandbox local benchmark: ${cpus().length} cores, local state in ${stateRoot}, targets from issue #2\n`);
    console.table([
      { measure: "submit latency p50", value: ms(percentile(submits, 50)), target: "", "vs bwrap exec": "" },
      {
        measure: `submit latency p99 (concurrency ${CONCURRENCY})`,
        value: ms(percentile(submits, 99)),
        target: "<= 20 ms",
        "vs bwrap exec": "",
      },
      {
        measure: "end-to-end latency p50 (trivial job)",
        value: ms(percentile(endToEnd, 50)),
        target: "<= 30 ms",
        "vs bwrap exec": `${(percentile(endToEnd, 50) / percentile(bwrap, 50)).toFixed(1)}x`,
      },
      {
        measure: "end-to-end latency p99 (trivial job)",
        value: ms(percentile(endToEnd, 99)),
        target: "",
        "vs bwrap exec": `${(percentile(endToEnd, 99) / percentile(bwrap, 99)).toFixed(1)}x`,
      },
      {
        measure: `throughput, ${JOBS} jobs at concurrency ${CONCURRENCY}`,
        value: `${jobsPerSecond.toFixed(0)} jobs/s`,
        target: ">= 200 jobs/s",
        "vs bwrap exec": `${((jobsPerSecond / bwrapPerSecond) * 100).toFixed(0)}% of bwrap rate`,
      },
      {
        measure: "local host alone: exec p50 (session per sandbox)",
        value: ms(percentile(hostExecs, 50)),
        target: "",
        "vs bwrap exec": "",
      },
      {
        measure: `local host alone: execs/s at concurrency ${CONCURRENCY}`,
        value: `${hostPerSecond.toFixed(0)} execs/s`,
        target: "",
        "vs bwrap exec": `${(hostPerSecond / bwrapPerSecond).toFixed(1)}x`,
      },
      {
        measure: "memory: workerd peak RSS (Worker + local Queues/KV/R2)",
        value: `${workerdPeakMiB.toFixed(0)} MiB`,
        target: "",
        "vs bwrap exec": "",
      },
      { measure: "memory: bench + local host process peak RSS", value: `${hostPeakMiB.toFixed(0)} MiB`, target: "", "vs bwrap exec": "" },
      {
        measure: `memory: ${sessions} live sandbox sessions (PSS)`,
        value: `${sessionsMiB.toFixed(0)} MiB (${(sessionsMiB / Math.max(1, sessions)).toFixed(1)} MiB each)`,
        target: "",
        "vs bwrap exec": "",
      },
      { measure: "baseline: bubblewrap exec p50", value: ms(percentile(bwrap, 50)), target: "", "vs bwrap exec": "1.0x" },
      { measure: "baseline: bubblewrap exec p99", value: ms(percentile(bwrap, 99)), target: "", "vs bwrap exec": "" },
      { measure: "baseline: sequential bubblewrap execs", value: `${bwrapPerSecond.toFixed(0)} execs/s`, target: "", "vs bwrap exec": "" },
    ]);
    if (failures.length > 0) console.log(`${failures.length} throughput jobs did not succeed: ${[...new Set(failures)].join(", ")}`);
  } finally {
    await stack.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
