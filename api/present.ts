/** Turns stored job records into API answers, with absolute download URLs for this origin. */
import type { JobRecord, JobView } from "../schemas/job";

export function jobUrl(origin: string, jobId: string): string {
  return `${origin}/v1/jobs/${jobId}`;
}

export function artifactUrl(origin: string, jobId: string, path: string): string {
  return `${jobUrl(origin, jobId)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
}

export function presentJob(record: JobRecord, origin: string): JobView {
  const { leaseUntil: _internal, ...visible } = record;
  return {
    ...visible,
    stdout: record.stdout && { ...record.stdout, url: `${jobUrl(origin, record.id)}/stdout` },
    stderr: record.stderr && { ...record.stderr, url: `${jobUrl(origin, record.id)}/stderr` },
    artifacts: record.artifacts.map((artifact) => ({ ...artifact, url: artifactUrl(origin, record.id, artifact.path) })),
  };
}
