/**
 * Webhooks end to end: a real HTTP receiver (test/setup/webhookReceiver.ts) that fails and then
 * succeeds, signatures verified with the `standardwebhooks` library as a receiver would, the
 * delivery log, a resend, batch events, the polling fallback, and disabling.
 */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { WebhooksClient } from "../../client/webhooks";
import { tenantEventsFor } from "../../events/tenantEvents";
import { BatchEventData, EventView } from "../../schemas/events";
import { BASE, postJson, runJob, submit, uniqueSandbox, waitForJob } from "./client";
import { receiverUrl } from "./support/receiver";

const receiver = receiverUrl();
const webhooks = new WebhooksClient({ baseUrl: BASE, fetch: (input, init) => SELF.fetch(input, init) });

const Received = z.array(z.object({ headers: z.record(z.string(), z.string()), body: z.string(), at: z.number(), answered: z.number() }));

/** What reached the receiver at `name`, once there are at least `count` requests (or the timeout). */
async function receivedAt(name: string, count: number, timeoutMs = 20_000): Promise<z.infer<typeof Received>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const received = Received.parse(await (await fetch(`${receiver}/received/${name}`)).json());
    if (received.length >= count || Date.now() > deadline) return received;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const uniqueName = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

describe("webhooks", () => {
  it("delivers a signed job event through a receiver that fails first, under one webhook-id, and logs every try", async () => {
    const name = uniqueName("retry");
    const created = await webhooks.create({ url: `${receiver}/r/${name}/fail/1`, events: ["job.succeeded", "job.failed"] });
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.enabled).toBe(true);
    // The secret is shown once: never in a read.
    expect(JSON.stringify(await webhooks.get(created.id))).not.toContain(created.secret);
    expect(JSON.stringify(await webhooks.list())).not.toContain("whsec_");

    const job = await runJob(uniqueSandbox("hook"), { type: "run", command: "echo hi", env: { API_TOKEN: "hunter2-secret-value" } });
    expect(job.status).toBe("succeeded");

    const received = await receivedAt(name, 2);
    expect(received.map((request) => request.answered)).toEqual([500, 200]);
    // The retry came on the schedule (5 s after the first), not at once.
    expect((received[1]?.at ?? 0) - (received[0]?.at ?? 0)).toBeGreaterThanOrEqual(4000);
    const verifier = new Webhook(created.secret);
    const events = received.map((request) => EventView.parse(verifier.verify(request.body, request.headers)));
    expect(new Set(received.map((request) => request.headers["webhook-id"]))).toEqual(new Set([events[0]?.id]));
    expect(received[0]?.headers["webhook-signature"]).toMatch(/^v1,/);
    expect(events[0]?.type).toBe("job.succeeded");
    expect(events[0]?.data).toMatchObject({ id: job.id, status: "succeeded", exitCode: 0 });
    // No env values, nor anything signed: only the names of the env variables.
    expect(received[0]?.body).not.toContain("hunter2-secret-value");
    expect(received[0]?.body).toContain("API_TOKEN");
    // Nor the record's bookkeeping (its runner's lease, where its stored output begins in the live log).
    const sent = z.object({ data: z.record(z.string(), z.unknown()) }).parse(JSON.parse(received[0]?.body ?? "{}"));
    expect(sent.data).not.toHaveProperty("leaseUntil");
    expect(sent.data).not.toHaveProperty("storedOutputAt");
    // A tampered body fails verification.
    expect(() => verifier.verify(received[0]?.body.replace("succeeded", "failed") ?? "", received[0]?.headers ?? {})).toThrow();

    const { deliveries } = await webhooks.deliveries(created.id);
    const delivery = deliveries.find((entry) => entry.eventId === events[0]?.id);
    expect(delivery).toMatchObject({ status: "delivered", eventType: "job.succeeded", nextAttemptAt: null });
    expect(delivery?.attempts.map((attempt) => attempt.responseCode)).toEqual([500, 200]);
    expect(delivery?.attempts[0]?.error).toBe("answered 500");

    // Sent again by hand: the same event under the same webhook-id.
    const resent = await webhooks.resend(created.id, delivery?.id ?? "");
    expect(resent.status).toBe("pending");
    const again = await receivedAt(name, 3);
    expect(again[2]?.headers["webhook-id"]).toBe(events[0]?.id);
    expect(EventView.parse(verifier.verify(again[2]?.body ?? "", again[2]?.headers ?? {})).id).toBe(events[0]?.id);

    // The polling fallback lists the same event.
    const page = await webhooks.events();
    expect(page.events.map((event) => event.id)).toContain(events[0]?.id);
    const later = await webhooks.events({ since: page.nextCursor });
    expect(later.events.map((event) => event.id)).not.toContain(events[0]?.id);
    await webhooks.remove(created.id);
  });

  it("sends job.skipped and one batch.finished summary for a failed pipeline", async () => {
    const name = uniqueName("batch");
    const created = await webhooks.create({ url: `${receiver}/r/${name}/fail/0`, events: ["batch.finished", "job.skipped"] });
    const sandbox = uniqueSandbox("hook-batch");
    const response = await postJson("/v1/jobs", {
      jobs: [
        { name: "build", sandboxId: sandbox, job: { type: "run", command: "exit 3" } },
        { name: "test", sandboxId: sandbox, needs: ["build"], job: { type: "run", command: "echo never" } },
      ],
    });
    const batch = z.object({ batchId: z.string(), jobs: z.array(z.object({ id: z.string() })) }).parse(await response.json());
    for (const job of batch.jobs) await waitForJob(job.id);
    const received = await receivedAt(name, 2);
    const events = received.map((request) => EventView.parse(new Webhook(created.secret).verify(request.body, request.headers)));
    expect(events.map((event) => event.type).sort()).toEqual(["batch.finished", "job.skipped"]);
    const summary = events.find((event) => event.type === "batch.finished")?.data;
    expect(summary).toMatchObject({ batchId: batch.batchId, status: "failed", counts: { failed: 1, skipped: 1 } });
    await webhooks.remove(created.id);
  });

  it("counts allowed failures apart in batch.finished, which then says the batch succeeded", async () => {
    const name = uniqueName("allowed");
    const created = await webhooks.create({ url: `${receiver}/r/${name}/fail/0`, events: ["batch.finished"] });
    const sandbox = uniqueSandbox("hook-allowed");
    const response = await postJson("/v1/jobs", {
      jobs: [
        { name: "lint", sandboxId: sandbox, allowFailure: true, job: { type: "run", command: "exit 2" } },
        { name: "slow", sandboxId: sandbox, allowFailure: true, job: { type: "run", command: "sleep 5", timeoutMs: 300 } },
        { name: "test", sandboxId: sandbox, needs: ["lint"], job: { type: "run", command: "echo ok" } },
        { name: "report", sandboxId: sandbox, needs: ["test"], when: "on_failure", job: { type: "run", command: "echo never" } },
      ],
    });
    const batch = z.object({ batchId: z.string(), jobs: z.array(z.object({ id: z.string() })) }).parse(await response.json());
    for (const job of batch.jobs) await waitForJob(job.id);
    const [request] = await receivedAt(name, 1);
    const event = EventView.parse(new Webhook(created.secret).verify(request?.body ?? "", request?.headers ?? {}));
    expect(event.type).toBe("batch.finished");
    const summary = BatchEventData.parse(event.data);
    expect(summary).toMatchObject({ batchId: batch.batchId, status: "succeeded", allowedFailures: 2 });
    expect(summary.counts).toEqual({ succeeded: 1, skipped: 1 });
    expect(summary.jobs.map((job) => [job.name, job.status, job.allowFailure])).toEqual([
      ["lint", "failed", true],
      ["slow", "timed_out", true],
      ["test", "succeeded", false],
      ["report", "skipped", false],
    ]);
    await webhooks.remove(created.id);
  });

  it("lists a cancelled job as job.cancelled and a timeout as job.timed_out in the polling fallback", async () => {
    const sandbox = uniqueSandbox("hook-cancel");
    const start = (await webhooks.events()).nextCursor;
    const timedOut = await runJob(sandbox, { type: "run", command: "sleep 5", timeoutMs: 300 });
    const queued = await submit(sandbox, { type: "run", command: "sleep 30" });
    await postJson(`/v1/jobs/${queued.id}/cancel`, {});
    await waitForJob(queued.id);
    const deadline = Date.now() + 10_000;
    let types = new Map<string, string>();
    while (Date.now() < deadline && types.size < 2) {
      const page = await webhooks.events({ since: start, limit: 100 });
      types = new Map(
        page.events.flatMap((event) =>
          "id" in event.data && "sandboxId" in event.data && event.data.sandboxId === sandbox ? [[event.data.id, event.type]] : [],
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(types.get(timedOut.id)).toBe("job.timed_out");
    expect(types.get(queued.id)).toBe("job.cancelled");
  });

  it("a slow endpoint does not hold up another's delivery", async () => {
    const slow = uniqueName("slow");
    const fast = uniqueName("fast");
    const slowHook = await webhooks.create({ url: `${receiver}/r/${slow}/slow/8000`, events: ["job.succeeded"] });
    const fastHook = await webhooks.create({ url: `${receiver}/r/${fast}/fail/0`, events: ["job.succeeded", "job.failed"] });
    const job = await runJob(uniqueSandbox("hook-slow"), { type: "run", command: "true" });
    const finishedAt = Date.parse(job.finishedAt ?? "");
    const [first] = await receivedAt(fast, 1, 10_000);
    expect(first).toBeDefined();
    expect((first?.at ?? 0) - finishedAt).toBeLessThan(4000);
    expect(await receivedAt(slow, 1, 0)).toHaveLength(0);
    // A later event, in a later queue batch, while the slow receiver still holds its first.
    const failedJob = await runJob(uniqueSandbox("hook-slow"), { type: "run", command: "exit 1" });
    const later = await receivedAt(fast, 2, 10_000);
    expect(later).toHaveLength(2);
    expect((later[1]?.at ?? 0) - Date.parse(failedJob.finishedAt ?? "")).toBeLessThan(4000);
    expect(await receivedAt(slow, 1, 0)).toHaveLength(0);
    await webhooks.remove(slowHook.id);
    await webhooks.remove(fastHook.id);
  });

  it("disables an endpoint that answers 410 Gone, and one that has failed for days, and says why", async () => {
    const gone = await webhooks.create({ url: `${receiver}/r/${uniqueName("gone")}/status/410`, events: ["job.succeeded"] });
    const failing = await webhooks.create({ url: `${receiver}/r/${uniqueName("down")}/status/503`, events: ["job.succeeded"] });
    // As if every delivery to it had failed for six days.
    await runInDurableObject(tenantEventsFor(env.TENANT_EVENTS, "local"), (_instance, state) => {
      state.storage.sql.exec("UPDATE webhook_endpoints SET failing_since = ? WHERE id = ?", Date.now() - 6 * 24 * 3600_000, failing.id);
    });
    await runJob(uniqueSandbox("hook-gone"), { type: "run", command: "true" });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && ((await webhooks.get(gone.id)).enabled || (await webhooks.get(failing.id)).enabled)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await webhooks.get(gone.id)).toMatchObject({ enabled: false, disabledReason: "disabled: the receiver answered 410 Gone" });
    const disabled = await webhooks.get(failing.id);
    expect(disabled.enabled).toBe(false);
    expect(disabled.disabledReason).toMatch(/every delivery has failed since/);
    // Turned back on by its owner: its failure streak starts afresh.
    expect(await webhooks.update(failing.id, { enabled: true })).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    await webhooks.remove(gone.id);
    await webhooks.remove(failing.id);
  });

  it("waits as long as a throttling receiver's Retry-After asks before the next try", async () => {
    const name = uniqueName("throttle");
    const created = await webhooks.create({ url: `${receiver}/r/${name}/throttle/600`, events: ["job.succeeded"] });
    await runJob(uniqueSandbox("hook-throttle"), { type: "run", command: "true" });
    const [first] = await receivedAt(name, 1);
    expect(first?.answered).toBe(429);
    let delivery = (await webhooks.deliveries(created.id)).deliveries[0];
    for (let tries = 0; tries < 50 && delivery?.attempts.length === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      delivery = (await webhooks.deliveries(created.id)).deliveries[0];
    }
    expect(delivery).toMatchObject({ status: "pending" });
    // 600 s asked, where the schedule alone would have waited 5 s.
    expect(Date.parse(delivery?.nextAttemptAt ?? "") - Date.parse(delivery?.attempts[0]?.at ?? "")).toBe(600_000);
    await webhooks.remove(created.id);
  });

  it("sends a try again whose queue message was lost, under the same webhook-id", async () => {
    const name = uniqueName("lost");
    const created = await webhooks.create({ url: `${receiver}/r/${name}/fail/0`, events: ["job.succeeded"] });
    await runJob(uniqueSandbox("hook-lost"), { type: "run", command: "true" });
    const [first] = await receivedAt(name, 1);
    const [delivery] = (await webhooks.deliveries(created.id)).deliveries;
    // As if the first try had failed and the message for the second, due 3 minutes ago, was lost.
    const stub = tenantEventsFor(env.TENANT_EVENTS, "local");
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE webhook_deliveries SET status = 'pending', due_at = ?, in_flight_until = NULL WHERE id = ?",
        Date.now() - 3 * 60_000,
        delivery?.id ?? "",
      );
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const received = await receivedAt(name, 2);
    expect(received).toHaveLength(2);
    expect(received[1]?.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
    expect((await webhooks.deliveries(created.id)).deliveries[0]?.status).toBe("delivered");
    await webhooks.remove(created.id);
  });

  it("refuses malformed registrations", async () => {
    const bad = await postJson("/v1/webhooks", { url: "ftp://example.com/hook", events: ["job.succeeded"] });
    expect(bad.status).toBe(400);
    const noEvents = await postJson("/v1/webhooks", { url: "https://example.com/hook", events: [] });
    expect(noEvents.status).toBe(400);
    const unknown = await postJson("/v1/webhooks", { url: "https://example.com/hook", events: ["job.exploded"] });
    expect(unknown.status).toBe(400);
    expect((await SELF.fetch(`${BASE}/v1/webhooks/wh_nope`)).status).toBe(400);
    expect((await SELF.fetch(`${BASE}/v1/webhooks/wh_01KB7Z0Q6X2V4X1T2B9S9YQ0QK`)).status).toBe(404);
  });
});
