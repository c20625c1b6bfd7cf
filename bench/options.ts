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
  /** Runs one row alone, in both modes (`--only fast-output`: the million-line output). */
  only: BenchPart | undefined;
}

/** Rows that `--only` can run alone. */
export const BENCH_PARTS = ["fast-output"] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

function benchPart(raw: string | undefined): BenchPart | undefined {
  if (raw === undefined) return undefined;
  const part = BENCH_PARTS.find((name) => name === raw);
  if (!part) throw new Error(`--only must be one of ${BENCH_PARTS.join(", ")}, not "${raw}"`);
  return part;
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
    only: benchPart(values.only),
  };
}
