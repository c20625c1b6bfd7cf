/**
 * TenantEvents: one Durable Object per tenant for what happens after jobs finish. Each finished
 * job is reported here once per publication (coordinator/finishing.ts) and becomes, exactly once:
 * an event in the tenant's log (GET /v1/events), a delivery to each webhook endpoint that takes
 * it (one queue message per try), a roll-up into the tenant's metrics, and an Analytics Engine
 * data point. A batch's last finished job adds its `batch.finished` event. The alarm purges what
 * is past the retention and re-sends tries whose queue message was lost.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import { writeJobDataPoint } from "../metrics/analytics";
import { MetricRollup, type Totals, type WindowFigures } from "../metrics/rollup";
import { countedEnv, operationBudget, withinBudget } from "../platform/operationBudget";
import { type EventPage, jobEventType } from "../schemas/events";
import { type JobRecord, withoutInternals } from "../schemas/job";
import type { WebhookDeliveryMessage } from "../schemas/queueMessages";
import type {
  CreatedWebhook,
  CreateWebhookRequest,
  DeliveryPage,
  DeliveryView,
  UpdateWebhookRequest,
  WebhookView,
} from "../schemas/webhooks";
import { MAX_WEBHOOKS_PER_TENANT } from "../schemas/webhooks";
import { readBatch } from "../storage/batches";
import { r2Keys } from "../storage/layout";
import { type AttemptResult, type DeliveryRow, DeliveryTable } from "../webhooks/deliveries";
import { EndpointTable } from "../webhooks/endpoints";
import type { DeliveryTask } from "../webhooks/send";
import { newWebhookSecret } from "../webhooks/signing";
import { EventLog, type StoredEvent } from "./eventLog";

/** An endpoint whose every try has failed this long is disabled (as Svix does). */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * 3600 * 1000;
/** A due try not taken this long after it was due lost its message: it is sent again. */
const LOST_MESSAGE_GRACE_MS = 2 * 60 * 1000;
/** How often the alarm looks, at the latest, while anything is kept. */
const HOUSEKEEPING_MS = 6 * 3600 * 1000;
/** Queues delays a message at most 12 hours. */
const MAX_DELAY_SECONDS = 12 * 3600;

const WINDOWS = { "1h": 3600_000, "24h": 24 * 3600_000, "7d": 7 * 24 * 3600_000 } as const;

export class TenantEvents extends DurableObject<Env> {
  private readonly log: EventLog;
  private readonly endpoints: EndpointTable;
  private readonly deliveries: DeliveryTable;
  private readonly metrics: MetricRollup;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
    this.log = new EventLog(ctx.storage.sql);
    this.endpoints = new EndpointTable(ctx.storage.sql);
    this.deliveries = new DeliveryTable(ctx.storage.sql);
    this.metrics = new MetricRollup(ctx.storage.sql);
  }

  /** A job has finished (reported again on a retried publication: only the first report counts). */
  async jobFinished(record: JobRecord): Promise<void> {
    const type = jobEventType(record);
    if (!type) return;
    await this.rememberTenant(record.tenant);
    if (record.batchId !== null && !this.log.knowsBatch(record.batchId)) {
      const manifest = await readBatch(this.env.JOB_OUTPUT, record.tenant, record.batchId);
      if (manifest) this.log.noteBatch(record.batchId, manifest.createdAt, manifest.jobs.length);
    }
    const now = new Date();
    const added = this.log.append(`job:${record.id}`, type, withoutInternals(record), now);
    if (!added) return;
    this.metrics.record(record, this.retentionMs() + 24 * 3600_000);
    writeJobDataPoint(this.env.JOB_ANALYTICS, record, type);
    const batch = this.log.batchJobFinished(record);
    const batchEvent = batch && this.log.append(`batch:${batch.batchId}`, "batch.finished", batch, now);
    await this.fanOut(record.tenant, batchEvent ? [added, batchEvent] : [added]);
    await this.registerForMetrics(record.tenant);
  }

  async events(since: number, limit: number): Promise<EventPage> {
    const page = this.log.page(since, limit);
    return { events: page.events.map(({ event }) => event), nextCursor: String(page.nextCursor) };
  }

  async createWebhook(tenant: string, input: CreateWebhookRequest): Promise<CreatedWebhook | "limit"> {
    await this.rememberTenant(tenant);
    if (this.endpoints.count() >= MAX_WEBHOOKS_PER_TENANT) return "limit";
    const secret = newWebhookSecret();
    const endpoint = this.endpoints.create(input, secret);
    return { ...endpoint.view, secret };
  }

  async webhooks(): Promise<WebhookView[]> {
    return this.endpoints.list().map((endpoint) => endpoint.view);
  }

  async webhook(id: string): Promise<WebhookView | undefined> {
    return this.endpoints.get(id)?.view;
  }

  async updateWebhook(id: string, patch: UpdateWebhookRequest): Promise<WebhookView | undefined> {
    const updated = this.endpoints.update(id, patch);
    if (updated && !updated.view.enabled) this.deliveries.cancelPending(id);
    return updated?.view;
  }

  async deleteWebhook(id: string): Promise<boolean> {
    this.deliveries.deleteForEndpoint(id);
    return this.endpoints.delete(id);
  }

  async webhookDeliveries(id: string, limit: number, cursor?: string): Promise<DeliveryPage | undefined> {
    if (!this.endpoints.get(id)) return undefined;
    return this.deliveries.page(id, limit, cursor);
  }

  /** Sends a finished delivery again: the same event under the same `webhook-id`, from the start of the schedule. */
  async resendDelivery(tenant: string, id: string, deliveryId: string): Promise<DeliveryView | "not-found" | "pending" | "disabled"> {
    const endpoint = this.endpoints.get(id);
    const current = this.deliveries.row(deliveryId);
    if (!endpoint || !current || current.endpoint_id !== id) return "not-found";
    if (!endpoint.view.enabled) return "disabled";
    if (current.status === "pending") return "pending";
    const restarted = this.deliveries.restart(deliveryId, Date.now());
    if (!restarted) return "not-found";
    await this.dispatch(tenant, [restarted]);
    return this.deliveries.view(restarted);
  }

  /** The delivery consumer takes try `attempt`: what to send, or null when that try is not due (a duplicate or stale message). */
  async beginAttempt(deliveryId: string, attempt: number): Promise<DeliveryTask | null> {
    const row = this.deliveries.row(deliveryId);
    if (!row || !this.deliveries.take(deliveryId, attempt, Date.now())) return null;
    const endpoint = this.endpoints.get(row.endpoint_id);
    const event = this.log.byId(row.event_id);
    if (!endpoint?.view.enabled) {
      this.deliveries.cancelPending(row.endpoint_id);
      return null;
    }
    if (!event) {
      this.deliveries.cancel(deliveryId);
      return null;
    }
    return { url: endpoint.view.url, secret: endpoint.secret, eventId: event.event.id, body: event.body };
  }

  /** The consumer's result of try `attempt`: the next try is scheduled, or the endpoint disabled. */
  async endAttempt(tenant: string, deliveryId: string, attempt: number, result: AttemptResult): Promise<void> {
    const now = Date.now();
    const row = this.deliveries.recordAttempt(deliveryId, attempt, result, now);
    if (!row) return;
    if (row.status === "delivered") {
      this.endpoints.succeeded(row.endpoint_id);
      return;
    }
    const failingSince = this.endpoints.failed(row.endpoint_id, now);
    const reason =
      result.responseCode === 410
        ? "the receiver answered 410 Gone"
        : now - failingSince >= DISABLE_AFTER_FAILING_MS
          ? `every delivery has failed since ${new Date(failingSince).toISOString()}`
          : undefined;
    if (reason) {
      this.endpoints.disable(row.endpoint_id, `disabled: ${reason}`);
      this.deliveries.cancelPending(row.endpoint_id);
      return;
    }
    if (row.status === "pending") await this.dispatch(tenant, [row]);
  }

  /** The tenant's figures over the last hour, day and week. */
  async metricWindows(): Promise<Record<keyof typeof WINDOWS, WindowFigures>> {
    const now = Date.now();
    return {
      "1h": this.metrics.window(WINDOWS["1h"], now),
      "24h": this.metrics.window(WINDOWS["24h"], now),
      "7d": this.metrics.window(WINDOWS["7d"], now),
    };
  }

  /** Artifact bytes of jobs finished within the retention: what is still stored. */
  async artifactBytesStored(): Promise<number> {
    return this.metrics.window(this.retentionMs(), Date.now()).artifactBytes;
  }

  async metricTotals(): Promise<Totals> {
    return this.metrics.totals();
  }

  override alarm(): Promise<void> {
    return withinBudget(operationBudget(this.env), "TenantEvents alarm", () => this.housekeeping());
  }

  private async housekeeping(): Promise<void> {
    const now = Date.now();
    this.log.purge(now - this.retentionMs());
    this.deliveries.purge(now - this.retentionMs());
    const tenant = await this.ctx.storage.get(TENANT_KEY);
    if (typeof tenant === "string") {
      const lost = this.deliveries.overdue(now, LOST_MESSAGE_GRACE_MS, 50);
      this.deliveries.redispatched(
        lost.map((row) => row.id),
        now,
      );
      await this.dispatch(tenant, lost);
    }
    await this.armAlarm();
  }

  private async fanOut(tenant: string, events: StoredEvent[]): Promise<void> {
    const now = Date.now();
    const rows = events.flatMap(({ event }) =>
      this.endpoints.subscribedTo(event.type).map((endpoint) => this.deliveries.create(endpoint.view.id, event.id, event.type, now)),
    );
    await this.dispatch(tenant, rows);
  }

  /**
   * One queue message per due try, delayed until it is due. A send that fails is logged and left
   * to the alarm, which sends again any try overdue by LOST_MESSAGE_GRACE_MS.
   */
  private async dispatch(tenant: string, rows: DeliveryRow[]): Promise<void> {
    const now = Date.now();
    const messages = rows.flatMap((row) => {
      if (row.status !== "pending" || row.due_at === null) return [];
      const body: WebhookDeliveryMessage = {
        kind: "webhook",
        tenant,
        webhookId: row.endpoint_id,
        deliveryId: row.id,
        attempt: row.attempts + 1,
      };
      const delaySeconds = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((row.due_at - now) / 1000)));
      return [{ body, delaySeconds }];
    });
    for (let start = 0; start < messages.length; start += 100) {
      await this.env.WEBHOOK_QUEUE.sendBatch(messages.slice(start, start + 100)).catch((error: unknown) => {
        console.warn(`tenant ${tenant}: webhook deliveries not queued yet; the alarm sends them again`, error);
      });
    }
    if (messages.length > 0) await this.armAlarm();
  }

  private async armAlarm(): Promise<void> {
    const due = this.deliveries.nextDue();
    const next = Math.min(Date.now() + HOUSEKEEPING_MS, due === undefined ? Number.POSITIVE_INFINITY : due + LOST_MESSAGE_GRACE_MS);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next || current < Date.now()) await this.ctx.storage.setAlarm(next);
  }

  private retentionMs(): number {
    return readConfig(this.env).retentionSeconds * 1000;
  }

  /** An alarm is not told the object's name: keep the tenant from a call that was. */
  private async rememberTenant(tenant: string): Promise<void> {
    if ((await this.ctx.storage.get(TENANT_KEY)) !== tenant) await this.ctx.storage.put(TENANT_KEY, tenant);
  }

  /** GET /metrics reports on the tenants listed in R2: each is written once, when its first job finishes. */
  private async registerForMetrics(tenant: string): Promise<void> {
    // Marked first (storage calls hold other calls back; the R2 write does not), so it is written once.
    if (await this.ctx.storage.get(REGISTERED_KEY)) return;
    await this.ctx.storage.put(REGISTERED_KEY, true);
    await this.env.JOB_OUTPUT.put(r2Keys.metricsTenant(tenant), "").catch(async (error: unknown) => {
      console.warn(`tenant ${tenant}: not yet listed for GET /metrics`, error);
      await this.ctx.storage.delete(REGISTERED_KEY);
    });
  }
}

const TENANT_KEY = "tenant";
const REGISTERED_KEY = "registered-for-metrics";

export function tenantEventsFor(namespace: DurableObjectNamespace<TenantEvents>, tenant: string): DurableObjectStub<TenantEvents> {
  return namespace.get(namespace.idFromName(tenant));
}
