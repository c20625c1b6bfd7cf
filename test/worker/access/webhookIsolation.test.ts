/**
 * Webhooks, events and metrics per tenant: another tenant's endpoint is a 404 on every route,
 * and its events and figures never show up in mine.
 */
import { describe, expect, it } from "vitest";
import { EventPage } from "../../../schemas/events";
import { MetricsView } from "../../../schemas/metrics";
import { CreatedWebhook, WebhookList } from "../../../schemas/webhooks";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

describe("webhook isolation", () => {
  it("hides each tenant's webhooks, deliveries, events and metrics from the other", async () => {
    const acme = await createKey(uniqueTenant("acme"));
    const globex = await createKey(uniqueTenant("globex"));
    const created = await deployed("/v1/webhooks", {
      method: "POST",
      key: acme.key,
      // Never delivered here (no batch runs): the test makes no request to the internet.
      body: JSON.stringify({ url: "https://hooks.example.com/acme", events: ["batch.finished"] }),
    });
    expect(created.status).toBe(201);
    const hook = CreatedWebhook.parse(await created.json());

    const job = await submitAs(acme.key, "build", { type: "run", command: "true" });
    expect((await finishedAs(acme.key, job.id)).status).toBe("succeeded");

    for (const [method, path] of [
      ["GET", `/v1/webhooks/${hook.id}`],
      ["PATCH", `/v1/webhooks/${hook.id}`],
      ["GET", `/v1/webhooks/${hook.id}/deliveries`],
    ] as const) {
      const init = method === "PATCH" ? { method, key: globex.key, body: JSON.stringify({ enabled: false }) } : { method, key: globex.key };
      await expectError(await deployed(path, init), 404, "WEBHOOK_NOT_FOUND");
    }
    expect((await (await deployed(`/v1/webhooks/${hook.id}`, { method: "DELETE", key: globex.key })).json()) as unknown).toMatchObject({
      deleted: false,
    });
    expect(WebhookList.parse(await (await deployed("/v1/webhooks", { key: globex.key })).json()).webhooks).toEqual([]);
    expect(WebhookList.parse(await (await deployed("/v1/webhooks", { key: acme.key })).json()).webhooks.map((w) => w.id)).toEqual([
      hook.id,
    ]);

    const globexEvents = EventPage.parse(await (await deployed("/v1/events", { key: globex.key })).json());
    expect(globexEvents.events).toEqual([]);
    const globexMetrics = MetricsView.parse(await (await deployed("/v1/metrics", { key: globex.key })).json());
    expect(globexMetrics.windows["7d"].jobs).toEqual({});
    // Anonymous requests are refused as deployed.
    await expectError(await deployed("/v1/webhooks"), 401, "UNAUTHENTICATED");
  });
});
