/**
 * The webhook queue's consumer: each message is one try of one delivery. Every message is acked
 * at once and its try runs on its own (waitUntil), so no receiver, however slow, holds up another
 * endpoint's deliveries or the next batch. A try lost with its isolate is sent again by the
 * tenant's TenantEvents alarm (it was never recorded as made).
 */
import { readConfig } from "../config";
import { tenantEventsFor } from "../events/tenantEvents";
import { WebhookDeliveryMessage } from "../schemas/queueMessages";
import { sendDelivery } from "./send";

/** Must match the webhook queue named in wrangler.jsonc. */
export const WEBHOOK_QUEUE = "artifact-sandbox-webhooks";

export function handleWebhookBatch(batch: MessageBatch, env: Env, ctx: ExecutionContext): void {
  const allowPrivate = readConfig(env).webhooks.allowPrivateDestinations;
  for (const message of batch.messages) {
    message.ack();
    const parsed = WebhookDeliveryMessage.safeParse(message.body);
    if (!parsed.success) {
      // Retrying cannot fix it; it names nothing that could be tried.
      console.error(`queue ${batch.queue}: malformed webhook message ${message.id} dropped`);
      continue;
    }
    ctx.waitUntil(runAttempt(env, parsed.data, allowPrivate));
  }
}

async function runAttempt(env: Env, message: WebhookDeliveryMessage, allowPrivate: boolean): Promise<void> {
  const events = tenantEventsFor(env.TENANT_EVENTS, message.tenant);
  try {
    const task = await events.beginAttempt(message.deliveryId, message.attempt);
    if (!task) return;
    const result = await sendDelivery(task, allowPrivate);
    await events.endAttempt(message.tenant, message.deliveryId, message.attempt, result);
  } catch (error) {
    console.warn(`webhook delivery ${message.deliveryId}: try ${message.attempt} not completed; it will be sent again`, error);
  }
}
