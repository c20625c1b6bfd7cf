/**
 * WebhookSender: one Durable Object per webhook endpoint that makes its tries. The queue consumer
 * only hands a try over (stored here, the alarm set) and acks, so no queue batch waits on a
 * receiver; each endpoint's tries run in its own object's alarm, so a slow or dead endpoint holds
 * up no other endpoint, whatever the queue's delivery order. A try lost here (the object reset
 * mid-try) is sent again by its tenant's TenantEvents alarm.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { readConfig } from "../config";
import { tenantEventsFor } from "../events/tenantEvents";
import { countedEnv, operationBudget, withinBudget } from "../platform/operationBudget";
import type { WebhookDeliveryMessage } from "../schemas/queueMessages";
import { sendDelivery } from "./send";

const TRY_PREFIX = "try:";
const StoredTry = z.object({ tenant: z.string(), deliveryId: z.string(), attempt: z.number().int() });

export class WebhookSender extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
  }

  /** Takes a try in (a duplicate is the same key) and makes sure the alarm will run it. */
  async accept(message: WebhookDeliveryMessage): Promise<void> {
    const { tenant, deliveryId, attempt } = message;
    await this.ctx.storage.put(`${TRY_PREFIX}${deliveryId}:${attempt}`, { tenant, deliveryId, attempt });
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
  }

  override alarm(): Promise<void> {
    return withinBudget(operationBudget(this.env), "WebhookSender alarm", () => this.sendAll());
  }

  /** Makes every try taken in, together; more may arrive meanwhile, so it looks again until none is left. */
  private async sendAll(): Promise<void> {
    const allowPrivate = readConfig(this.env).webhooks.allowPrivateDestinations;
    for (let tries = await this.stored(); tries.size > 0; tries = await this.stored()) {
      await Promise.all(
        [...tries].map(async ([key, stored]) => {
          const parsed = StoredTry.safeParse(stored);
          if (parsed.success) await this.send(parsed.data, allowPrivate);
          await this.ctx.storage.delete(key);
        }),
      );
    }
  }

  private stored(): Promise<Map<string, unknown>> {
    return this.ctx.storage.list({ prefix: TRY_PREFIX, limit: 100 });
  }

  private async send(stored: z.infer<typeof StoredTry>, allowPrivate: boolean): Promise<void> {
    const events = tenantEventsFor(this.env.TENANT_EVENTS, stored.tenant);
    try {
      const task = await events.beginAttempt(stored.deliveryId, stored.attempt);
      if (!task) return;
      const result = await sendDelivery(task, allowPrivate);
      await events.endAttempt(stored.tenant, stored.deliveryId, stored.attempt, result);
    } catch (error) {
      console.warn(`webhook delivery ${stored.deliveryId}: try ${stored.attempt} not completed; it will be sent again`, error);
    }
  }
}

export function webhookSenderFor(namespace: DurableObjectNamespace<WebhookSender>, tenant: string, webhookId: string) {
  return namespace.get(namespace.idFromName(`${tenant}/${webhookId}`));
}
