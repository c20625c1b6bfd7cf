/**
 * The webhook queue's consumer: each message is one try of one delivery, handed to its
 * endpoint's WebhookSender (which makes it from its alarm) and acked; the batch never waits on a
 * receiver. A hand-over that fails is retried by the queue.
 */
import { WebhookDeliveryMessage } from "../schemas/queueMessages";
import { webhookSenderFor } from "./sender";

/** Must match the webhook queue named in wrangler.jsonc. */
export const WEBHOOK_QUEUE = "artifact-sandbox-webhooks";

export async function handleWebhookBatch(batch: MessageBatch, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = WebhookDeliveryMessage.safeParse(message.body);
      if (!parsed.success) {
        // Retrying cannot fix it; it names nothing that could be tried.
        console.error(`queue ${batch.queue}: malformed webhook message ${message.id} dropped`);
        message.ack();
        return;
      }
      try {
        await webhookSenderFor(env.WEBHOOK_SENDER, parsed.data.tenant, parsed.data.webhookId).accept(parsed.data);
        message.ack();
      } catch (error) {
        console.warn(`webhook delivery ${parsed.data.deliveryId}: not handed to its sender yet`, error);
        message.retry({ delaySeconds: 5 });
      }
    }),
  );
}
