/**
 * Where everything is stored: the one place that names KV keys, R2 keys and Durable Object
 * names. Every one of them carries the tenant, so no lookup can reach another tenant's data.
 * A job's changing state lives in its sandbox's coordinator (coordinator/jobTable.ts); every
 * object here is written once (R2 and KV take one write per second per key).
 *
 * KV   job:{tenant}:{jobId}                          the final record, for fast polling (written when the job ends)
 *      apikey:{sha256 of the key}                    the tenant and key ID an API key stands for
 *      apikey-id:{keyId}                             the same key by its ID, for listing and revoking
 * R2   tenants/{tenant}/submits/{time}/{firstJobId}-{lastJobId}.json   the records of one submit's jobs as
 *                                                    submitted: names each job's sandbox. The jobs of one submit
 *                                                    share the time part of their IDs, so a job's ID finds it
 *      tenants/{tenant}/jobs/{jobId}/record.json     the final record, written when the job ends
 *      tenants/{tenant}/jobs/{jobId}/request.json    the full request (env, stdin, content) of a job its coordinator
 *                                                    did not take at submit; deleted once the job ends
 *      tenants/{tenant}/jobs/{jobId}/upload.tar.gz   an uploaded source archive, deleted once unpacked
 *      tenants/{tenant}/jobs/{jobId}/attempts/{n}/stdout, .../stderr       captured output of attempt n
 *      tenants/{tenant}/jobs/{jobId}/attempts/{n}/artifacts.pack          its collected files' bytes, one after another
      tenants/{tenant}/jobs/{jobId}/attempts/{n}/artifacts.index/{page}.json  up to 1,000 entries of the pack each,
                                                    in path order: path (relative to cwd), offset, size, sha256, mode
                                                    (storage/artifactIndex.ts; a file is a range read of the pack)
 *        (the final record names the attempt it publishes, so an attempt that outlived its
 *        runner can never overwrite what the record describes)
 *      tenants/{tenant}/batches/{batchId}.json       a batch's jobs and what each needs
 *      undelivered/{sandboxKey}/{jobId}              empty entry for a job its coordinator did not take at submit,
 *                                                    until it ends: the sweeper's worklist should its message be lost
 *      tenant-registry/{tenant}                      empty entry per tenant ever admitted: where the sweeper starts
 *      tenants/{tenant}/batches/{batchId}.request.json  its jobs as submitted (matrix expanded), to run them again
 *      workspaces/{sandboxKey}/snapshot.tar.gz       the sandbox's /workspace, saved when its container went to sleep
 *      caches/{tenant}/{sha256 of key}/{version}.tar.gz  a cache key's archive, a new object each save (TenantDirectory names the current one)
 *      malformed-messages/{messageId}.json           queue messages that could not be parsed, kept for inspection
 *      metrics-tenants/{tenant}                      empty, written once when a tenant's first job finishes: whom GET /metrics reports on
 * DO   Sandbox and SandboxCoordinator objects are named by sandbox key; TenantDirectory and TenantEvents by tenant.
 */
import { createHash } from "node:crypto";

export const JOB_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
/** A ULID's first ten characters encode its millisecond. */
const ULID_TIME_LENGTH = 10;

/** The SDK takes sandbox names of at most 63 characters. */
const SANDBOX_KEY_MAX = 63;

/**
 * One tenant's sandbox, named across the platform: `{tenant}.{sandboxId}`, the name of its
 * Sandbox and SandboxCoordinator objects and of its container. Tenant IDs hold no '.', so the
 * tenant is always what precedes the first one. When the two IDs together are too long for the
 * SDK, the end of the sandbox ID gives way to a hash of the whole.
 */
export function sandboxKey(tenant: string, sandboxId: string): string {
  const plain = `${tenant}.${sandboxId}`;
  if (plain.length <= SANDBOX_KEY_MAX) return plain;
  const hash = createHash("sha256").update(`${tenant}/${sandboxId}`).digest("hex").slice(0, 16);
  const kept = sandboxId.slice(0, SANDBOX_KEY_MAX - tenant.length - 1 - hash.length - 2).replace(/-+$/, "");
  return `${tenant}.${kept}-x${hash}`;
}

/** The tenant a sandbox key belongs to. */
export function tenantOf(key: string): string {
  const dot = key.indexOf(".");
  if (dot <= 0) throw new Error(`Not a sandbox key: ${key}`);
  return key.slice(0, dot);
}

export const kvKeys = {
  job: (tenant: string, jobId: string) => `job:${tenant}:${jobId}`,
  apiKey: (keyHash: string) => `apikey:${keyHash}`,
  apiKeyIdPrefix: "apikey-id:",
  apiKeyId: (keyId: string) => `apikey-id:${keyId}`,
};

const jobPrefix = (tenant: string, jobId: string) => `tenants/${tenant}/jobs/${jobId}`;

export const r2Keys = {
  submitPrefix: (tenant: string, jobId: string) => `tenants/${tenant}/submits/${jobId.slice(0, ULID_TIME_LENGTH)}/`,
  submit: (tenant: string, firstJobId: string, lastJobId: string) =>
    `${r2Keys.submitPrefix(tenant, firstJobId)}${firstJobId}-${lastJobId}.json`,
  record: (tenant: string, jobId: string) => `${jobPrefix(tenant, jobId)}/record.json`,
  request: (tenant: string, jobId: string) => `${jobPrefix(tenant, jobId)}/request.json`,
  output: (tenant: string, jobId: string, attempt: number, stream: "stdout" | "stderr") =>
    `${jobPrefix(tenant, jobId)}/attempts/${attempt}/${stream}`,
  artifactPack: (tenant: string, jobId: string, attempt: number) => `${jobPrefix(tenant, jobId)}/attempts/${attempt}/artifacts.pack`,
  artifactIndexPage: (tenant: string, jobId: string, attempt: number, page: number) =>
    `${jobPrefix(tenant, jobId)}/attempts/${attempt}/artifacts.index/${page}.json`,
  upload: (tenant: string, jobId: string) => `${jobPrefix(tenant, jobId)}/upload.tar.gz`,
  batch: (tenant: string, batchId: string) => `tenants/${tenant}/batches/${batchId}.json`,
  batchRequest: (tenant: string, batchId: string) => `tenants/${tenant}/batches/${batchId}.request.json`,
  workspaceSnapshot: (key: string) => `workspaces/${key}/snapshot.tar.gz`,
  undeliveredPrefix: "undelivered/",
  undeliveredEntry: (key: string, jobId: string) => `undelivered/${key}/${jobId}`,
  tenantRegistryPrefix: "tenant-registry/",
  tenantRegistryEntry: (tenant: string) => `tenant-registry/${tenant}`,
  cacheArchive: (tenant: string, keyHash: string, version: string) => `caches/${tenant}/${keyHash}/${version}.tar.gz`,
  malformedMessage: (messageId: string) => `malformed-messages/${messageId}.json`,
  metricsTenantPrefix: "metrics-tenants/",
  metricsTenant: (tenant: string) => `metrics-tenants/${tenant}`,
};
