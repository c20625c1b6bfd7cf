/**
 * Where everything about a job is stored: the one place that names KV keys and R2 keys.
 *
 * KV   job:{jobId}                           cached job record for fast polling
 * R2   jobs/{jobId}/record.json              the authoritative job record (strongly consistent)
 *      jobs/{jobId}/request.json             the full request (env, stdin, content), deleted once the job ends
 *      jobs/{jobId}/attempts/{n}/stdout, .../stderr       captured output of attempt n
 *      jobs/{jobId}/attempts/{n}/artifacts/{path}         its collected files, path relative to the job's cwd
 *        (only the attempt that writes the final record is published, so a stale attempt that
 *        outlived its lease can never overwrite what the record describes)
 *      sandboxes/{sandboxId}/jobs/{newestFirstId}   empty index entry per job, listed newest first
 *      active/{sandboxId}/{jobId}            empty entry while the job is unfinished: the sweeper's worklist
 *      workspaces/{sandboxId}/snapshot.tar.gz  the sandbox's /workspace, saved when its container went to sleep
 *      malformed-messages/{messageId}.json   queue messages that could not be parsed, kept for inspection
 */

const ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const JOB_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Mirrors each ULID character so that ascending key order lists the newest job first. */
function invertUlid(id: string): string {
  let out = "";
  for (const ch of id) out += ULID_ALPHABET[ULID_ALPHABET.length - 1 - ULID_ALPHABET.indexOf(ch)];
  return out;
}

export const kvKeys = {
  job: (jobId: string) => `job:${jobId}`,
};

export const r2Keys = {
  record: (jobId: string) => `jobs/${jobId}/record.json`,
  request: (jobId: string) => `jobs/${jobId}/request.json`,
  output: (jobId: string, attempt: number, stream: "stdout" | "stderr") => `jobs/${jobId}/attempts/${attempt}/${stream}`,
  artifact: (jobId: string, attempt: number, path: string) => `jobs/${jobId}/attempts/${attempt}/artifacts/${path}`,
  workspaceSnapshot: (sandboxId: string) => `workspaces/${sandboxId}/snapshot.tar.gz`,
  activePrefix: "active/",
  activeEntry: (sandboxId: string, jobId: string) => `active/${sandboxId}/${jobId}`,
  sandboxIndexPrefix: (sandboxId: string) => `sandboxes/${sandboxId}/jobs/`,
  sandboxIndexEntry: (sandboxId: string, jobId: string) => `${r2Keys.sandboxIndexPrefix(sandboxId)}${invertUlid(jobId)}`,
  malformedMessage: (messageId: string) => `malformed-messages/${messageId}.json`,
  jobIdFromIndexEntry: (key: string) => invertUlid(key.slice(key.lastIndexOf("/") + 1)),
};
