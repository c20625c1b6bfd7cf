/**
 * A run job's inputs: artifacts of other jobs of the same tenant (its needs, so finished by now)
 * streamed from R2 into this job's sandbox before its command runs, byte-exact, under each
 * input's `path` with the artifact's own relative path and permission bits.
 */
import picomatch from "picomatch";
import type { SandboxPort } from "../sandbox/port";
import type { JobError, JobInput, JobRecord } from "../schemas/job";
import { r2Keys } from "../storage/layout";

export interface InputContext {
  sandbox: SandboxPort;
  bucket: R2Bucket;
  /** A job of this job's tenant (the only tenant whose jobs an input can name). */
  readJob: (jobId: string) => Promise<JobRecord | undefined>;
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
    const matches = picomatch(input.artifacts, { dot: true });
    for (const artifact of source.artifacts.filter((candidate) => matches(candidate.path))) {
      const object = await context.bucket.get(r2Keys.artifact(source.tenant, source.id, source.attempts, artifact.path));
      if (!object) return { code: "INPUT_UNAVAILABLE", message: `Artifact ${artifact.path} of job ${source.id} is gone` };
      const target = `${input.path === "/" ? "" : input.path}/${artifact.path}`;
      await context.sandbox.writeFileFromStream(target, object.body);
      await context.sandbox.setMode(target, artifact.mode.toString(8).padStart(3, "0"));
    }
  }
  return undefined;
}
