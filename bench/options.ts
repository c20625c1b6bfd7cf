/** `npm run bench` command-line options: how many jobs, at what concurrency, and the quick variant. */
import { parseArgs } from "node:util";

/** The benchmark's stacks run this many containers at most: in effect no cap (see run.ts). */
export const BENCH_MAX_CONTAINERS = 10_000;

export interface BenchOptions {
  /** Trivial jobs in the throughput run (and execs in the local host's run). */
  jobs: number;
  /** Clients (and sandboxes) working at once in the throughput, submit and local host runs. */
  concurrency: number;
  /** Trivial jobs run one at a time for end-to-end latency (and raw bubblewrap execs for its floor). */
  latencySamples: number;
  /** Trivial jobs sandbox B runs while sandbox A's long job runs. */
  headOfLineSamples: number;
  /** Size of the artifact the artifact run creates and collects, and how long each of its jobs may take. */
  artifactBytes: number;
  artifactWaitMs: number;
  /** Whether to run the crash-restart part (two more stack starts, about a minute). */
  crash: boolean;
  /** Whether the stacks' own output (wrangler's, the container host's) reaches the terminal. */
  verbose: boolean;
  /** Only these parts (`--only submit,batch`), each with its own floor; undefined: the whole benchmark. */
  only?: BenchPart[];
}

/**
 * Parts that run on their own with `--only`: `throughput` (trivial jobs at concurrency beside raw
 * bubblewrap execs at the same concurrency, with the CPU each costs), `submit` (submit latency at concurrency beside a
 * 404 at the same concurrency), `batch` (a 100-job batch's accept time beside a 404 one at a time),
 * `fast-output` (the million-line output beside the same command raw, with our agent and with
 * Cloudflare's container server).
 */
export const BENCH_PARTS = ["throughput", "submit", "batch", "fast-output"] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

function isBenchPart(name: string): name is BenchPart {
  return BENCH_PARTS.some((part) => part === name);
}

function parts(raw: string | undefined): BenchPart[] | undefined {
  if (raw === undefined) return undefined;
  const names = raw.split(",").map((name) => name.trim());
  const unknown = names.filter((name) => !isBenchPart(name));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--only takes ${BENCH_PARTS.join(", ")} (comma-separated), not "${raw}"`);
  return names.filter(isBenchPart);
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not "${raw}"`);
  return value;
}

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: "string" },
      concurrency: { type: "string" },
      quick: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      "artifact-mib": { type: "string" },
      only: { type: "string" },
    },
  });
  // --quick checks the whole benchmark in about a minute: smaller counts, a 16 MiB artifact, no crash part.
  const quick = values.quick === true;
  return {
    jobs: positiveInt("jobs", values.jobs, quick ? 200 : 1000),
    concurrency: positiveInt("concurrency", values.concurrency, 32),
    latencySamples: quick ? 50 : 200,
    headOfLineSamples: quick ? 10 : 20,
    artifactBytes: positiveInt("artifact-mib", values["artifact-mib"], quick ? 16 : 1024) * 1024 * 1024,
    artifactWaitMs: (quick ? 90 : 180) * 1000,
    crash: !quick,
    verbose: values.verbose === true,
    only: parts(values.only),
  };
}
