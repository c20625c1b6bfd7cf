import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// The Worker exactly as wrangler.jsonc configures it, except JOB_STATUS: the tests wrap KV so
// that it is as strict as Cloudflare's (a second write to a key within a second fails), which
// local KV is not. A wrapped binding cannot share its name with a plain one, hence the removal.
const wranglerOptions = unstable_getMiniflareWorkerOptions("./wrangler.jsonc");
const { JOB_STATUS: _plainKv, ...otherKvNamespaces } = wranglerOptions.workerOptions.kvNamespaces ?? {};

export default defineConfig({
  test: {
    projects: [
      {
        // The Worker in workerd, with real local Queues/KV/R2 and the real local sandbox host.
        plugins: [
          cloudflareTest(({ inject }) => {
            const host = inject("sandboxHost");
            return {
              main: wranglerOptions.main,
              miniflare: {
                ...wranglerOptions.workerOptions,
                bindings: {
                  ...wranglerOptions.workerOptions.bindings,
                  SANDBOX_BACKEND: "local",
                  LOCAL_SANDBOX_URL: host.url,
                  LOCAL_SANDBOX_TOKEN: host.token,
                },
                kvNamespaces: otherKvNamespaces,
                wrappedBindings: { JOB_STATUS: { scriptName: "strict-kv" } },
                workers: [{ name: "strict-kv", modules: true, scriptPath: "./test/setup/strictKv.js", kvNamespaces: { INNER: "job-status" } }],
              },
            };
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["./test/setup/sandboxHost.ts"],
          testTimeout: 30_000,
        },
      },
      {
        // Node-side code: the local sandbox host and repository checks.
        test: { name: "node", include: ["test/node/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
      },
    ],
  },
});
