/**
 * Typed settings read from the Worker's vars (wrangler.jsonc). One place parses them so a bad
 * value fails loudly instead of turning into NaN somewhere deep.
 */
import { z } from "zod";

const PositiveInt = z.coerce.number().int().positive();
/** R2 presigned URLs live at most 7 days; Worker-signed ones keep to the same bound. */
export const MAX_SIGNED_URL_TTL_SECONDS = 7 * 24 * 60 * 60;

/**
 * An attempt's artifacts are one R2 object (storage/artifactPack.ts) written by a single put,
 * which R2 takes up to 5 GiB: 4 GiB leaves room to spare. Index pages hold 1,000 files each, so
 * 100,000 files are 100 page writes and reads, within an invocation's 1,000 operations.
 */
const MAX_ARTIFACT_TOTAL_BYTES = 4 * 1024 * 1024 * 1024;
const MAX_ARTIFACT_FILES = 100_000;

/** A tenant's caches together, by default (actions/cache allows 10 GB per repository). */
const DEFAULT_CACHE_MAX_BYTES = 5 * 1024 * 1024 * 1024;

const ConfigVars = z.object({
  RETENTION_DAYS: PositiveInt,
  ARTIFACT_MAX_FILES: PositiveInt.max(MAX_ARTIFACT_FILES, `ARTIFACT_MAX_FILES is at most ${MAX_ARTIFACT_FILES}`),
  ARTIFACT_MAX_TOTAL_BYTES: PositiveInt.max(
    MAX_ARTIFACT_TOTAL_BYTES,
    `ARTIFACT_MAX_TOTAL_BYTES is at most ${MAX_ARTIFACT_TOTAL_BYTES} (4 GiB)`,
  ),
  MAX_JOB_ATTEMPTS: PositiveInt,
  OUTPUT_MAX_BYTES: PositiveInt,
  SANDBOX_ANSWER_TIMEOUT_SECONDS: PositiveInt,
  WORKSPACE_PERSISTENCE: z.enum(["on", "off"]),
  REQUIRE_API_KEYS: z.enum(["0", "1"]),
  API_KEY_CACHE_SECONDS: z.coerce.number().int().min(0).max(60),
  SIGNED_URL_TTL_SECONDS: PositiveInt.max(MAX_SIGNED_URL_TTL_SECONDS),
  MAX_ACTIVE_JOBS_PER_TENANT: PositiveInt,
  MAX_SANDBOXES_PER_TENANT: PositiveInt,
  TENANT_MAX_CONTAINERS: PositiveInt,
  SANDBOX_IDLE_TTL_SECONDS: PositiveInt,
  WEBHOOK_ALLOW_PRIVATE_DESTINATIONS: z.enum(["0", "1"]).default("0"),
  // Secrets (wrangler secret put; .dev.vars or `npm run dev` locally), absent until set.
  URL_SIGNING_KEYS: z.string().optional(),
  R2_ACCESS_KEY_ID: z.string().optional(),
  R2_SECRET_ACCESS_KEY: z.string().optional(),
  R2_ACCOUNT_ID: z.string().optional(),
  R2_BUCKET_NAME: z.string().optional(),
  METRICS_TOKEN: z.string().optional(),
  SECRETS_ENCRYPTION_KEY: z.string().optional(),
  // Not in wrangler.jsonc until it needs changing from its default.
  CACHE_MAX_BYTES_PER_TENANT: PositiveInt.default(DEFAULT_CACHE_MAX_BYTES),
});

/** Keys as `kid:secret` pairs, comma-separated; the first signs (or encrypts), every one verifies (or decrypts). */
const keyList = (what: string) =>
  z
    .string()
    .transform((raw) =>
      raw
        .split(",")
        .map((pair) => pair.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,32}:.{32,}$/, `each ${what} is kid:secret, the secret 32 characters or more`)
          .transform((pair) => ({ id: pair.slice(0, pair.indexOf(":")), secret: pair.slice(pair.indexOf(":") + 1) })),
      ),
    );

export interface AppConfig {
  retentionSeconds: number;
  artifactMaxFiles: number;
  artifactMaxTotalBytes: number;
  maxJobAttempts: number;
  /** Bytes kept of each of stdout and stderr: the head and the tail, the middle of larger output dropped. */
  outputMaxBytes: number;
  /** How long a sandbox may leave a round trip of a running job unanswered before it is given up on. */
  sandboxAnswerTimeoutMs: number;
  /** Save /workspace to R2 before a container sleeps and restore it into a fresh one. */
  persistWorkspace: boolean;
  /** Refuse requests without an API key (deployed); a local stack may let them in as tenant `local`. */
  requireApiKeys: boolean;
  /** How long an isolate trusts a key it verified: the local bound on revocation (deployed, KV adds up to 60 s). */
  apiKeyCacheSeconds: number;
  signedUrls: {
    defaultTtlSeconds: number;
    /** The first signs; all verify, so a rotated-out key's URLs stay valid until they expire. */
    keys: { id: string; secret: string }[];
    /** Set when R2 S3 credentials are: artifact URLs then go straight to the bucket. */
    r2?: { accessKeyId: string; secretAccessKey: string; accountId: string; bucket: string };
  };
  quotas: { maxActiveJobs: number; maxSandboxes: number };
  /** Containers one tenant's sandboxes may hold awake at once (access/containerSlots.ts). */
  tenantMaxContainers: number;
  /** A sandbox idle this long has its container and workspace destroyed. */
  sandboxIdleTtlSeconds: number;
  /** `allowPrivateDestinations`: http and local receivers too (npm run dev, tests); deployed, https to public hosts only. */
  webhooks: { allowPrivateDestinations: boolean };
  /** The operator token of GET /metrics; without it that route answers 404. */
  metricsToken?: string;
  /** Encrypt tenants' secrets at rest: the first encrypts, every one decrypts (rotation). Empty: no secrets. */
  secretsKeys: { id: string; secret: string }[];
  /** A tenant's caches together: past it, the least recently used entries are evicted. */
  cacheMaxBytes: number;
}

// The vars of one Worker isolate do not change: parse them once, not on every request.
const parsed = new WeakMap<Env, AppConfig>();

export function readConfig(env: Env): AppConfig {
  const cached = parsed.get(env);
  if (cached) return cached;
  const config = parseConfig(env);
  parsed.set(env, config);
  return config;
}

function parseConfig(env: Env): AppConfig {
  const vars = ConfigVars.parse(env);
  return {
    retentionSeconds: vars.RETENTION_DAYS * 24 * 60 * 60,
    artifactMaxFiles: vars.ARTIFACT_MAX_FILES,
    artifactMaxTotalBytes: vars.ARTIFACT_MAX_TOTAL_BYTES,
    maxJobAttempts: vars.MAX_JOB_ATTEMPTS,
    outputMaxBytes: vars.OUTPUT_MAX_BYTES,
    sandboxAnswerTimeoutMs: vars.SANDBOX_ANSWER_TIMEOUT_SECONDS * 1000,
    persistWorkspace: vars.WORKSPACE_PERSISTENCE === "on",
    requireApiKeys: vars.REQUIRE_API_KEYS === "1",
    apiKeyCacheSeconds: vars.API_KEY_CACHE_SECONDS,
    signedUrls: {
      defaultTtlSeconds: vars.SIGNED_URL_TTL_SECONDS,
      keys: keyList("URL signing key").parse(vars.URL_SIGNING_KEYS ?? ""),
      ...(vars.R2_ACCESS_KEY_ID && vars.R2_SECRET_ACCESS_KEY && vars.R2_ACCOUNT_ID && vars.R2_BUCKET_NAME
        ? {
            r2: {
              accessKeyId: vars.R2_ACCESS_KEY_ID,
              secretAccessKey: vars.R2_SECRET_ACCESS_KEY,
              accountId: vars.R2_ACCOUNT_ID,
              bucket: vars.R2_BUCKET_NAME,
            },
          }
        : {}),
    },
    quotas: { maxActiveJobs: vars.MAX_ACTIVE_JOBS_PER_TENANT, maxSandboxes: vars.MAX_SANDBOXES_PER_TENANT },
    tenantMaxContainers: vars.TENANT_MAX_CONTAINERS,
    sandboxIdleTtlSeconds: vars.SANDBOX_IDLE_TTL_SECONDS,
    webhooks: { allowPrivateDestinations: vars.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS === "1" },
    ...(vars.METRICS_TOKEN ? { metricsToken: vars.METRICS_TOKEN } : {}),
    secretsKeys: keyList("secrets encryption key").parse(vars.SECRETS_ENCRYPTION_KEY ?? ""),
    cacheMaxBytes: vars.CACHE_MAX_BYTES_PER_TENANT,
  };
}
