/**
 * The Worker: `fetch` serves the HTTP API (api/), `queue` is the durable intake that hands jobs
 * to their sandbox's coordinator (consumer/), `scheduled` sweeps for stranded jobs. Durable
 * Objects: `Sandbox` (the SDK's, behind each sandbox's container) and `SandboxCoordinator`
 * (runs each sandbox's jobs in order, one at a time).
 */
import { createApp } from "./api/app";
import { readConfig } from "./config";
import { handleJobBatch } from "./consumer/handler";
import { sweep } from "./coordinator/sweeper";
import { countedEnv, operationBudget, withinBudget } from "./platform/operationBudget";
import { handleWebhookBatch, WEBHOOK_QUEUE } from "./webhooks/consumer";

export { TenantDirectory } from "./access/tenantDirectory";
export { SandboxCoordinator } from "./coordinator/sandboxCoordinator";
export { TenantEvents } from "./events/tenantEvents";
export { Sandbox } from "./sandbox/sandboxObject";
export { WebhookSender } from "./webhooks/sender";

/** Must match the dead letter queue named in wrangler.jsonc. */
const DEAD_LETTER_QUEUE = "artifact-sandbox-jobs-dlq";

const app = createApp();

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    const invocation = `${request.method} ${new URL(request.url).pathname}`;
    return withinBudget(operationBudget(env), invocation, () => app.fetch(request, countedEnv(env), ctx));
  },
  async queue(batch, env) {
    if (batch.queue === WEBHOOK_QUEUE)
      return withinBudget(operationBudget(env), `queue ${batch.queue}`, () => handleWebhookBatch(batch, countedEnv(env)));
    await withinBudget(operationBudget(env), `queue ${batch.queue}`, () =>
      handleJobBatch(batch, countedEnv(env), { config: readConfig(env), deadLetterQueue: DEAD_LETTER_QUEUE }),
    );
  },
  async scheduled(_controller, env) {
    const report = await withinBudget(operationBudget(env), "scheduled sweep", () => sweep(countedEnv(env), readConfig(env)));
    if (report.redelivered > 0) console.log(`sweeper: handed ${report.redelivered} stranded job(s) back to their sandboxes`);
  },
} satisfies ExportedHandler<Env>;
