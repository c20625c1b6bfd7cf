/** `artifact-sandbox webhooks add|list|rm|deliveries|resend`: a tenant's webhook endpoints and their delivery log. */
import type { Command } from "commander";
import { z } from "zod";
import { clientOptionsFromEnv } from "../../client";
import { type DeliveryView, WebhooksClient, type WebhookView } from "../../client/webhooks";
import { EVENT_TYPES, EventType } from "../../schemas/events";
import { UsageError } from "../failure";
import { printJson } from "../output";

const JsonOption = z.object({ json: z.boolean().default(false) });
const AddOptions = z.object({
  events: z.string().default(EVENT_TYPES.join(",")),
  description: z.string().optional(),
  json: z.boolean().default(false),
});
const DeliveriesOptions = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), json: z.boolean().default(false) });

function webhooksClient(): WebhooksClient {
  return new WebhooksClient(clientOptionsFromEnv(process.env));
}

function parseEvents(list: string): EventType[] {
  const names = list
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !EventType.safeParse(name).success);
  if (unknown.length > 0 || names.length === 0) {
    throw new UsageError(
      `--events takes a comma-separated list of: ${EVENT_TYPES.join(", ")}${unknown.length ? ` (unknown: ${unknown.join(", ")})` : ""}`,
    );
  }
  return names.map((name) => EventType.parse(name));
}

function webhookLine(webhook: WebhookView): string {
  const state = webhook.enabled ? "enabled" : `DISABLED (${webhook.disabledReason ?? "no reason given"})`;
  return `${webhook.id}  ${webhook.url}  ${webhook.events.join(",")}  ${state}`;
}

function deliveryLines(delivery: DeliveryView): string[] {
  const next = delivery.nextAttemptAt ? `  next try ${delivery.nextAttemptAt}` : "";
  return [
    `${delivery.id}  ${delivery.eventType}  ${delivery.status}${next}  (webhook-id ${delivery.eventId})`,
    ...delivery.attempts.map(
      (attempt) =>
        `  try ${attempt.attempt}  ${attempt.at}  ${attempt.responseCode ?? "-"}  ${attempt.durationMs} ms${attempt.error ? `  ${attempt.error}` : ""}`,
    ),
  ];
}

export function registerWebhookCommands(program: Command): void {
  const webhooks = program
    .command("webhooks")
    .description("Webhook endpoints: job and batch events POSTed to your URL, signed (Standard Webhooks)");

  webhooks
    .command("add")
    .description("Register an endpoint; prints its signing secret (whsec_...), shown only this once")
    .argument("<url>", "where to POST events (https; http to this machine only on a local stack)")
    .option("--events <list>", `comma-separated event types (default: all of ${EVENT_TYPES.join(", ")})`)
    .option("--description <text>", "a note for yourself")
    .option("--json", "print the endpoint, secret included, as JSON")
    .action(async (url: string, raw: unknown) => {
      const options = AddOptions.parse(raw);
      const created = await webhooksClient().create({
        url,
        events: parseEvents(options.events),
        ...(options.description ? { description: options.description } : {}),
      });
      if (options.json) return printJson(created);
      process.stdout.write(`${webhookLine(created)}\nsecret (shown only now): ${created.secret}\n`);
    });

  webhooks
    .command("list")
    .description("List your endpoints, and why any is disabled")
    .option("--json", "print them as JSON")
    .action(async (raw: unknown) => {
      const list = await webhooksClient().list();
      if (JsonOption.parse(raw).json) return printJson(list);
      for (const webhook of list) process.stdout.write(`${webhookLine(webhook)}\n`);
    });

  webhooks
    .command("rm")
    .description("Delete an endpoint and its delivery log")
    .argument("<webhook>", "webhook ID (wh_...)")
    .action(async (webhookId: string) => {
      const deleted = await webhooksClient().remove(webhookId);
      process.stdout.write(`${deleted.deleted ? "deleted" : "nothing to delete"}: ${webhookId}\n`);
    });

  webhooks
    .command("deliveries")
    .description("An endpoint's deliveries, newest first, with every try (time, response code, error)")
    .argument("<webhook>", "webhook ID (wh_...)")
    .option("--limit <n>", "how many (1-100)", "20")
    .option("--json", "print them as JSON")
    .action(async (webhookId: string, raw: unknown) => {
      const options = DeliveriesOptions.parse(raw);
      const page = await webhooksClient().deliveries(webhookId, { limit: options.limit });
      if (options.json) return printJson(page.deliveries);
      for (const delivery of page.deliveries) process.stdout.write(`${deliveryLines(delivery).join("\n")}\n`);
    });

  webhooks
    .command("resend")
    .description("Send a finished delivery again (same event, same webhook-id)")
    .argument("<webhook>", "webhook ID (wh_...)")
    .argument("<delivery>", "delivery ID (dlv_...)")
    .action(async (webhookId: string, deliveryId: string) => {
      const delivery = await webhooksClient().resend(webhookId, deliveryId);
      process.stdout.write(`${deliveryLines(delivery).join("\n")}\n`);
    });
}
