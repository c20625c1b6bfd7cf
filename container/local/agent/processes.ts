/**
 * Commands started by `/api/execute/stream`, tracked like the real container's process store: a
 * stream's client may go away while its command keeps running, and `DELETE /api/process/kill-all`
 * (the SDK's `killAllProcesses()`) is how a caller ends them. Also serves `GET /api/process/list`.
 */
import { randomBytes } from "node:crypto";

export type ProcessStatus = "running" | "completed" | "failed" | "killed" | "error";

export type ProcessRecord = {
  id: string;
  command: string;
  status: ProcessStatus;
  startTime: Date;
  exitCode: number | undefined;
  /** Aborting it kills the command (queued or running) with its whole process tree. */
  readonly cancel: AbortController;
  /** Settles once the command has ended and its processes are gone. */
  finished: Promise<void>;
};

/** Finished records kept for `process/list`; older ones are forgotten so memory stays bounded. */
const MAX_FINISHED_RECORDS = 100;

export class ProcessRegistry {
  private readonly records = new Map<string, ProcessRecord>();

  start(command: string): ProcessRecord {
    const record: ProcessRecord = {
      id: `proc_${Date.now()}_${randomBytes(6).toString("hex")}`,
      command,
      status: "running",
      startTime: new Date(),
      exitCode: undefined,
      cancel: new AbortController(),
      finished: Promise.resolve(),
    };
    this.records.set(record.id, record);
    return record;
  }

  finish(record: ProcessRecord, exitCode: number | undefined, status?: ProcessStatus): void {
    record.exitCode = exitCode;
    record.status = status ?? (record.cancel.signal.aborted ? "killed" : exitCode === 0 ? "completed" : "failed");
    const finished = [...this.records.values()].filter((each) => each.status !== "running");
    for (const old of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_RECORDS))) this.records.delete(old.id);
  }

  list(status: string | null): ProcessRecord[] {
    return [...this.records.values()].filter((record) => status === null || record.status === status);
  }

  /** Kills every running command and waits until each one's processes are gone; returns how many. */
  async killAll(): Promise<number> {
    const running = this.list("running");
    for (const record of running) record.cancel.abort();
    await Promise.all(running.map((record) => record.finished));
    return running.length;
  }
}
