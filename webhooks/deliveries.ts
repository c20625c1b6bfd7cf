/**
 * Webhook deliveries and their attempts, in the tenant's TenantEvents object's SQLite: one
 * delivery per event and endpoint, tried on RETRY_SCHEDULE_SECONDS until a 2xx, each try under
 * the same `webhook-id` (the event's ID). The row says which try is due and when; a queue
 * message stands for one try, so a duplicate or stale message finds its try taken and does nothing.
 */
import { ulid } from "ulid";
import { z } from "zod";
import { EventType } from "../schemas/events";
import { type DeliveryAttempt, DeliveryStatus, type DeliveryView } from "../schemas/webhooks";

/** Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h and 10 h later: about 18 hours in all. */
export const RETRY_SCHEDULE_SECONDS = [0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600];
/** A try is someone's for this long; after that its message is taken for lost and sent again. */
export const ATTEMPT_LEASE_MS = 60_000;

const DeliveryRow = z.object({
  id: z.string(),
  endpoint_id: z.string(),
  event_id: z.string(),
  event_type: EventType,
  status: DeliveryStatus,
  attempts: z.number(),
  schedule_start: z.number(),
  due_at: z.number().nullable(),
  in_flight_until: z.number().nullable(),
  created_at: z.number(),
});
export type DeliveryRow = z.infer<typeof DeliveryRow>;
const AttemptRow = z.object({
  attempt: z.number(),
  at: z.number(),
  response_code: z.number().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number(),
});

const COLUMNS = "id, endpoint_id, event_id, event_type, status, attempts, schedule_start, due_at, in_flight_until, created_at";

export interface AttemptResult {
  responseCode: number | null;
  error: string | null;
  durationMs: number;
  /** A throttling receiver's Retry-After (429, 503), in seconds: the next try waits at least this long. */
  retryAfterSeconds?: number;
}

/** A Retry-After is honoured up to this long (Queues delays a message at most 12 hours). */
const MAX_RETRY_AFTER_SECONDS = 12 * 3600;

export class DeliveryTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS webhook_deliveries (
      id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
      status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, schedule_start INTEGER NOT NULL DEFAULT 0,
      due_at INTEGER, in_flight_until INTEGER, created_at INTEGER NOT NULL)`);
    sql.exec("CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)");
    sql.exec("CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, due_at)");
    sql.exec(`CREATE TABLE IF NOT EXISTS webhook_attempts (
      delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL, response_code INTEGER,
      error TEXT, duration_ms INTEGER NOT NULL, PRIMARY KEY (delivery_id, attempt))`);
  }

  create(endpointId: string, eventId: string, eventType: EventType, now: number): DeliveryRow {
    const id = `dlv_${ulid(now)}`;
    this.sql.exec(
      "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, status, due_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
      id,
      endpointId,
      eventId,
      eventType,
      now,
      now,
    );
    return this.row(id) ?? missing(id);
  }

  row(id: string): DeliveryRow | undefined {
    const row = this.sql.exec(`SELECT ${COLUMNS} FROM webhook_deliveries WHERE id = ?`, id).toArray()[0];
    return row === undefined ? undefined : DeliveryRow.parse(row);
  }

  /** Takes try `attempt` of a pending delivery for ATTEMPT_LEASE_MS; false when it is not due or someone has it. */
  take(id: string, attempt: number, now: number): boolean {
    return (
      this.sql.exec(
        `UPDATE webhook_deliveries SET in_flight_until = ? WHERE id = ? AND status = 'pending' AND attempts + 1 = ?
           AND (in_flight_until IS NULL OR in_flight_until < ?)`,
        now + ATTEMPT_LEASE_MS,
        id,
        attempt,
        now,
      ).rowsWritten > 0
    );
  }

  /**
   * Records try `attempt`: delivered on a 2xx; otherwise the next try's time on the schedule, or
   * `failed` once the schedule is used up. The delivery as it now stands.
   */
  recordAttempt(id: string, attempt: number, result: AttemptResult, now: number): DeliveryRow | undefined {
    const current = this.row(id);
    if (current?.status !== "pending" || current.attempts + 1 !== attempt) return undefined;
    this.sql.exec(
      "INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, at, response_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
      id,
      attempt,
      now,
      result.responseCode,
      result.error,
      result.durationMs,
    );
    const delivered = result.responseCode !== null && result.responseCode >= 200 && result.responseCode < 300;
    const scheduled = RETRY_SCHEDULE_SECONDS[attempt - current.schedule_start];
    const nextDelay =
      scheduled === undefined ? undefined : Math.max(scheduled, Math.min(result.retryAfterSeconds ?? 0, MAX_RETRY_AFTER_SECONDS));
    const status = delivered ? "delivered" : nextDelay === undefined ? "failed" : "pending";
    this.sql.exec(
      "UPDATE webhook_deliveries SET attempts = ?, status = ?, due_at = ?, in_flight_until = NULL WHERE id = ?",
      attempt,
      status,
      status === "pending" && nextDelay !== undefined ? now + nextDelay * 1000 : null,
      id,
    );
    return this.row(id);
  }

  /** Sends a finished delivery again from the start of the schedule (the same event, the same `webhook-id`). */
  restart(id: string, now: number): DeliveryRow | undefined {
    this.sql.exec(
      "UPDATE webhook_deliveries SET status = 'pending', schedule_start = attempts, due_at = ?, in_flight_until = NULL WHERE id = ? AND status != 'pending'",
      now,
      id,
    );
    return this.row(id);
  }

  /** One delivery that can no longer be made (its event is past the retention). */
  cancel(id: string): void {
    this.sql.exec("UPDATE webhook_deliveries SET status = 'cancelled', due_at = NULL, in_flight_until = NULL WHERE id = ?", id);
  }

  /** Tries sent again because their message was lost: not taken for lost again before another grace period. */
  redispatched(ids: string[], now: number): void {
    for (const id of ids) this.sql.exec("UPDATE webhook_deliveries SET due_at = ? WHERE id = ? AND status = 'pending'", now, id);
  }

  /** An endpoint disabled or deleted: its pending deliveries will not be tried. */
  cancelPending(endpointId: string): void {
    this.sql.exec(
      "UPDATE webhook_deliveries SET status = 'cancelled', due_at = NULL, in_flight_until = NULL WHERE endpoint_id = ? AND status = 'pending'",
      endpointId,
    );
  }

  /** Pending tries overdue by `graceMs` and held by nobody: their message was lost. */
  overdue(now: number, graceMs: number, limit: number): DeliveryRow[] {
    return this.sql
      .exec(
        `SELECT ${COLUMNS} FROM webhook_deliveries WHERE status = 'pending' AND due_at < ?
           AND (in_flight_until IS NULL OR in_flight_until < ?) ORDER BY due_at LIMIT ?`,
        now - graceMs,
        now,
        limit,
      )
      .toArray()
      .map((row) => DeliveryRow.parse(row));
  }

  /** The earliest time a pending try is due, or undefined when none is pending. */
  nextDue(): number | undefined {
    const row = this.sql.exec("SELECT MIN(due_at) AS due FROM webhook_deliveries WHERE status = 'pending'").one();
    return z.object({ due: z.number().nullable() }).parse(row).due ?? undefined;
  }

  /** An endpoint's deliveries, newest first, after `cursor` (a delivery ID). */
  page(endpointId: string, limit: number, cursor?: string): { deliveries: DeliveryView[]; nextCursor: string | null } {
    const rows = this.sql
      .exec(
        `SELECT ${COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?`,
        endpointId,
        cursor ?? null,
        cursor ?? null,
        limit + 1,
      )
      .toArray()
      .map((row) => DeliveryRow.parse(row));
    const pageRows = rows.slice(0, limit);
    const last = pageRows[pageRows.length - 1];
    return { deliveries: pageRows.map((row) => this.view(row)), nextCursor: rows.length > limit && last ? last.id : null };
  }

  view(row: DeliveryRow): DeliveryView {
    const attempts: DeliveryAttempt[] = this.sql
      .exec("SELECT attempt, at, response_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt", row.id)
      .toArray()
      .map((raw) => AttemptRow.parse(raw))
      .map((attempt) => ({
        attempt: attempt.attempt,
        at: new Date(attempt.at).toISOString(),
        responseCode: attempt.response_code,
        error: attempt.error,
        durationMs: attempt.duration_ms,
      }));
    return {
      id: row.id,
      webhookId: row.endpoint_id,
      eventId: row.event_id,
      eventType: row.event_type,
      status: row.status,
      nextAttemptAt: row.status === "pending" && row.due_at !== null ? new Date(row.due_at).toISOString() : null,
      createdAt: new Date(row.created_at).toISOString(),
      attempts,
    };
  }

  /** Forgets deliveries (and their attempts) created before `before`. */
  purge(before: number): void {
    this.sql.exec("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE created_at < ?)", before);
    this.sql.exec("DELETE FROM webhook_deliveries WHERE created_at < ? AND status != 'pending'", before);
  }

  deleteForEndpoint(endpointId: string): void {
    this.sql.exec(
      "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = ?)",
      endpointId,
    );
    this.sql.exec("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", endpointId);
  }
}

function missing(id: string): never {
  throw new Error(`delivery ${id} vanished right after it was created`);
}
