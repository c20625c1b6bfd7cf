import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { configDefaults, defineConfig } from "vitest/config";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// The Worker exactly as wrangler.jsonc configures it, except that KV and the queue producer are
// wrapped to enforce Cloudflare's limits, which local simulation does not: one KV or R2 write per
// second per key, 128 KB per queue message. A wrapped binding cannot share its name with a plain
// one, hence the removals.
const wranglerOptions = unstable_getMiniflareWorkerOptions("./wrangler.jsonc");
const { LOOKUPS: _plainKv, ...otherKvNamespaces } = wranglerOptions.workerOptions.kvNamespaces ?? {};
const { JOB_QUEUE: _plainQueue, ...otherQueueProducers } = wranglerOptions.workerOptions.queueProducers ?? {};
const { JOB_OUTPUT: _plainBucket, ...otherR2Buckets } = wranglerOptions.workerOptions.r2Buckets ?? {};

// Everything but the bindings, the same in both Worker projects.
const sharedWorkerOptions = {
  ratelimits: {
    ...wranglerOptions.workerOptions.ratelimits,
    // A tight limit the rate limit test puts in place of the configured one.
    TIGHT_RATE_LIMIT: { simple: { limit: 3, period: 60 } },
  },
  kvNamespaces: otherKvNamespaces,
  queueProducers: otherQueueProducers,
  r2Buckets: otherR2Buckets,
  wrappedBindings: {
    LOOKUPS: { scriptName: "strict-kv" },
    JOB_QUEUE: { scriptName: "strict-queue" },
    JOB_OUTPUT: { scriptName: "strict-r2" },
  },
  workers: [
    { name: "strict-kv", modules: true, scriptPath: "./test/setup/strictKv.js", kvNamespaces: { INNER: "job-status" } },
    {
      name: "strict-r2",
      modules: true,
      scriptPath: "./test/setup/strictR2.js",
      r2Buckets: { INNER: "artifact-sandbox-output" },
    },
    {
      name: "strict-queue",
      modules: true,
      scriptPath: "./test/setup/strictQueue.js",
      queueProducers: { INNER: { queueName: "artifact-sandbox-jobs" } },
    },
  ],
};

export default defineConfig({
  test: {
    projects: [
      {
        // The Worker in workerd, with real local Queues/KV/R2 and the real local sandbox host.
        plugins: [
          cloudflareTest(({ inject }) => {
            const host = inject("sandboxHost");
            const cappedHost = inject("cappedSandboxHost");
            return {
              main: wranglerOptions.main,
              miniflare: {
                ...wranglerOptions.workerOptions,
                bindings: {
                  ...wranglerOptions.workerOptions.bindings,
                  LOCAL_SANDBOX_URL: host.url,
                  LOCAL_SANDBOX_TOKEN: host.token,
                  // Which server plays the container ("agent" or "reference"), for tests whose
                  // expectations differ between the two (test/worker/support/containerServer.ts).
                  TEST_CONTAINER_SERVER: host.containerServer,
                  // A host that runs one container at most (test/worker/containerCapacity.test.ts).
                  TEST_CAPPED_HOST_URL: cappedHost.url,
                  // Uncapped, as the host is (test/setup/sandboxHost.ts): the tests' hundreds of
                  // sandboxes are all tenant "local"'s. The cap is tested in worker-capacity below.
                  TENANT_MAX_CONTAINERS: "10000",
                  // Small, so that a test can overflow it cheaply.
                  OUTPUT_MAX_BYTES: "65536",
                  // Short, so that a test of a sandbox that stops answering ends soon (deployed: 20 s).
                  SANDBOX_ANSWER_TIMEOUT_SECONDS: "8",
                  // The SDK logs every container call at info level; tests only want its warnings.
                  SANDBOX_LOG_LEVEL: "warn",
                  // As `npm run dev`: anonymous requests act as tenant "local"; the access tests
                  // turn keys on per request (test/worker/access/).
                  REQUIRE_API_KEYS: "0",
                  URL_SIGNING_KEYS: "test:0123456789abcdef0123456789abcdef0123456789abcdef",
                  SECRETS_ENCRYPTION_KEY: "test:fedcba9876543210fedcba9876543210fedcba9876543210",
                  // Small, so that the cache test can pass it and see the least recently used entry go.
                  CACHE_MAX_BYTES_PER_TENANT: "300000",
                  // Every request and alarm invocation fails past this many operations (platform/operationBudget.ts).
                  OPERATION_BUDGET: "1000",
                  // Webhooks go to the receiver test/setup/webhookReceiver.ts starts on 127.0.0.1.
                  WEBHOOK_ALLOW_PRIVATE_DESTINATIONS: "1",
                  METRICS_TOKEN: "test-metrics-token-0123456789abcdef",
                },
                ...sharedWorkerOptions,
              },
            };
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/worker/capacity/**"],
          globalSetup: ["./test/setup/sandboxHost.ts", "./test/setup/webhookReceiver.ts"],
          // Cloudflare's server starts under Bun and answers each job's round trips more slowly than
          // our agent: a cold container plus a job takes up to twice as long on a loaded 2-core runner.
          testTimeout: process.env.SANDBOX_CONTAINER === "reference" ? 60_000 : 30_000,
        },
      },
      {
        // The Worker on a host that runs 3 containers at most, with a tenant cap of 2: how the
        // containers are shared (test/worker/capacity/).
        plugins: [
          cloudflareTest(({ inject }) => {
            const host = inject("capacityHost");
            return {
              main: wranglerOptions.main,
              miniflare: {
                ...wranglerOptions.workerOptions,
                bindings: {
                  ...wranglerOptions.workerOptions.bindings,
                  LOCAL_SANDBOX_URL: host.url,
                  LOCAL_SANDBOX_TOKEN: host.token,
                  TEST_CONTAINER_SERVER: host.containerServer,
                  TENANT_MAX_CONTAINERS: "2",
                  SANDBOX_LOG_LEVEL: "warn",
                  URL_SIGNING_KEYS: "test:0123456789abcdef0123456789abcdef0123456789abcdef",
                  OPERATION_BUDGET: "1000",
                },
                ...sharedWorkerOptions,
              },
            };
          }),
        ],
        test: {
          name: "worker-capacity",
          include: ["test/worker/capacity/**/*.test.ts"],
          globalSetup: ["./test/setup/capacityHost.ts"],
          testTimeout: 120_000,
        },
      },
      {
        // Node-side code: the local sandbox host and repository checks.
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          // The burst (100 containers at once) runs on its own: `npm run test:burst`.
          exclude: process.env.RUN_BURST_TEST ? configDefaults.exclude : [...configDefaults.exclude, "test/node/burst.test.ts"],
          environment: "node",
          testTimeout: 30_000,
        },
      },
    ],
  },
});
