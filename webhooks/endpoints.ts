/**
 * A tenant's webhook endpoints, in its TenantEvents object's SQLite. The signing secret is kept
 * here (signing needs it whole) and leaves only in the answer to the create, and to the delivery
 * consumer that signs with it.
 */
import { ulid } from "ulid";
import { z } from "zod";
import { EventType } from "../schemas/events";
import type { UpdateWebhookRequest, WebhookView } from "../schemas/webhooks";

const EndpointRow = z.object({
  id: z.string(),
  url: z.string(),
  events: z.string(),
  description: z.string().nullable(),
  secret: z.string(),
  enabled: z.number(),
  disabled_reason: z.string().nullable(),
  failing_since: z.number().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});
type EndpointRow = z.infer<typeof EndpointRow>;

export interface Endpoint {
  view: WebhookView;
  secret: string;
}

const COLUMNS = "id, url, events, description, secret, enabled, disabled_reason, failing_since, created_at, updated_at";

function toEndpoint(row: EndpointRow): Endpoint {
  return {
    secret: row.secret,
    view: {
      id: row.id,
      url: row.url,
      events: z.array(EventType).parse(JSON.parse(row.events)),
      description: row.description,
      enabled: row.enabled === 1,
      disabledReason: row.disabled_reason,
      failingSince: row.failing_since === null ? null : new Date(row.failing_since).toISOString(),
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    },
  };
}

export class EndpointTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS webhook_endpoints (
      id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, description TEXT, secret TEXT NOT NULL,
      enabled INTEGER NOT NULL DEFAULT 1, disabled_reason TEXT, failing_since INTEGER,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
  }

  count(): number {
    return z.object({ n: z.number() }).parse(this.sql.exec("SELECT COUNT(*) AS n FROM webhook_endpoints").one()).n;
  }

  create(input: { url: string; events: EventType[]; description?: string }, secret: string): Endpoint {
    const now = Date.now();
    const id = `wh_${ulid(now)}`;
    this.sql.exec(
      "INSERT INTO webhook_endpoints (id, url, events, description, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      id,
      input.url,
      JSON.stringify([...new Set(input.events)]),
      input.description ?? null,
      secret,
      now,
      now,
    );
    return this.get(id) ?? unreachable(id);
  }

  get(id: string): Endpoint | undefined {
    const row = this.sql.exec(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = ?`, id).toArray()[0];
    return row === undefined ? undefined : toEndpoint(EndpointRow.parse(row));
  }

  list(): Endpoint[] {
    return this.sql
      .exec(`SELECT ${COLUMNS} FROM webhook_endpoints ORDER BY id`)
      .toArray()
      .map((row) => toEndpoint(EndpointRow.parse(row)));
  }

  /** Enabled endpoints that take events of this type. */
  subscribedTo(type: EventType): Endpoint[] {
    return this.list().filter((endpoint) => endpoint.view.enabled && endpoint.view.events.includes(type));
  }

  update(id: string, patch: UpdateWebhookRequest): Endpoint | undefined {
    const current = this.get(id);
    if (!current) return undefined;
    // Turned back on: its failure streak starts afresh.
    const reenabled = patch.enabled === true && !current.view.enabled;
    this.sql.exec(
      `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, enabled = ?, disabled_reason = ?,
         failing_since = ?, updated_at = ? WHERE id = ?`,
      patch.url ?? current.view.url,
      JSON.stringify([...new Set(patch.events ?? current.view.events)]),
      patch.description ?? current.view.description,
      (patch.enabled ?? current.view.enabled) ? 1 : 0,
      patch.enabled === undefined ? current.view.disabledReason : patch.enabled ? null : "disabled by its owner",
      reenabled ? null : current.view.failingSince === null ? null : Date.parse(current.view.failingSince),
      Date.now(),
      id,
    );
    return this.get(id);
  }

  delete(id: string): boolean {
    return this.sql.exec("DELETE FROM webhook_endpoints WHERE id = ?", id).rowsWritten > 0;
  }

  succeeded(id: string): void {
    this.sql.exec("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL", id);
  }

  /** Notes a failed attempt; since when the endpoint has been failing. */
  failed(id: string, at: number): number {
    this.sql.exec("UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL", at, id);
    const row = this.sql.exec("SELECT failing_since FROM webhook_endpoints WHERE id = ?", id).toArray()[0];
    return row === undefined ? at : (z.object({ failing_since: z.number().nullable() }).parse(row).failing_since ?? at);
  }

  disable(id: string, reason: string): void {
    this.sql.exec("UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?", reason, Date.now(), id);
  }
}

function unreachable(id: string): never {
  throw new Error(`webhook ${id} vanished right after it was created`);
}
