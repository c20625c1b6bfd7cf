/**
 * Crash recovery: a dev stack (`startDevProcess`) on its own state gets 60 jobs of `sleep 1-3`
 * across 6 sandboxes, is SIGKILLed (every process at once) about 3 s later, and is started again
 * on the same state; measured: from that restart until every job has finished.
 */
import { startDevProcess } from "../scripts/devProcess";
import { awaitFinished, type BenchJob, submitJob } from "./apiClient";
import { stopStack, track } from "./cleanup";
import { progress } from "./progress";
import { sleep } from "./stats";

export interface CrashRun {
  jobs: number;
  /** From the restart call until every job had finished (the restart's own start-up included). */
  recoverySeconds: number;
  /** How long the restarted stack took to serve, included above. */
  startupSeconds: number;
  statuses: Record<string, number>;
}

const JOBS = 60;
const SANDBOXES = 6;

export async function measureCrashRecovery(stateDir: string, apiPort: number, hostPort: number): Promise<CrashRun> {
  const ports = { apiPort, hostPort, stateDir };
  const first = track(await startDevProcess(ports));
  const ids: string[] = [];
  try {
    const submitted = Date.now();
    await Promise.all(
      Array.from({ length: JOBS }, async (_, index) => {
        const job = await submitJob(first.apiUrl, `bench-crash-${index % SANDBOXES}`, { command: `sleep ${1 + (index % 3)}` });
        ids.push(job.id);
      }),
    );
    await sleep(Math.max(0, 3000 - (Date.now() - submitted)));
  } finally {
    await first.kill();
  }
  progress(`crash: SIGKILLed the stack with ${ids.length} jobs submitted; restarting on the same state...`);
  const restarted = performance.now();
  const second = track(await startDevProcess(ports));
  const startupSeconds = (performance.now() - restarted) / 1000;
  try {
    const finished: BenchJob[] = await Promise.all(ids.map((id) => awaitFinished(second.apiUrl, id, 180_000)));
    const recoverySeconds = (performance.now() - restarted) / 1000;
    const statuses: Record<string, number> = {};
    for (const job of finished) statuses[job.status] = (statuses[job.status] ?? 0) + 1;
    return { jobs: ids.length, recoverySeconds, startupSeconds, statuses };
  } finally {
    await stopStack(second);
  }
}
