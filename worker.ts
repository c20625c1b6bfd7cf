/**
 * The Worker: `fetch` serves the HTTP API (api/), `queue` runs jobs (consumer/). `Sandbox` is
 * the SDK's Durable Object class behind each sandbox's container; `JobWatch` wakes long-polls
 * when a job finishes.
 */
import { createApp } from "./api/app";
import { readConfig } from "./config";
import { handleJobBatch } from "./consumer/handler";
import { sandboxFactory } from "./sandbox/select";

export { Sandbox } from "./sandbox/sandboxObject";
export { JobWatch } from "./storage/jobWatch";

/** Must match the dead letter queue named in wrangler.jsonc. */
const DEAD_LETTER_QUEUE = "artifact-sandbox-jobs-dlq";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    await handleJobBatch(batch, env, { config: readConfig(env), sandboxFor: sandboxFactory(env), deadLetterQueue: DEAD_LETTER_QUEUE });
  },
} satisfies ExportedHandler<Env>;
