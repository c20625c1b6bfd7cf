/**
 * A tenant's container slots, kept in its TenantDirectory's SQLite: at most TENANT_MAX_CONTAINERS
 * of its sandboxes hold one at a time, so one tenant cannot take every container the account may
 * run. A sandbox's coordinator takes its slot before its job reaches the container and keeps it
 * while the container may be awake: `busy` under a short lease its heartbeat renews, then `idle`
 * until the container would have gone to sleep. Idle containers count, since they take the
 * account's containers as much as busy ones; but the tenant's next job takes an idle one's slot
 * (its container stopped first) rather than wait. Every slot is a lease with an expiry, so one
 * whose coordinator vanished is reclaimed once it lapses; none is held forever.
 */
import { z } from "zod";

/** A busy slot lapses this long after its last renewal (its coordinator renews it every 30 s). */
export const BUSY_SLOT_LEASE_MS = 90_000;

export type SlotGrant =
  /** `evict`: the tenant's idle sandbox whose slot this one took; its container is to stop first. */
  | { granted: true; evict?: string }
  /** The tenant's cap is taken by containers with a job running or starting. */
  | { granted: false; held: number };

const SlotRow = z.object({ sandbox_id: z.string() });
const Count = z.object({ n: z.number() });

export class ContainerSlots {
  constructor(private readonly sql: SqlStorage) {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS container_slots (
      sandbox_id TEXT PRIMARY KEY, busy INTEGER NOT NULL, expires_at INTEGER NOT NULL, since INTEGER NOT NULL)`);
    // Sandboxes refused a slot, to be woken in turn as the tenant's jobs end (they also retry on their own).
    this.sql.exec("CREATE TABLE IF NOT EXISTS container_slot_waiters (sandbox_id TEXT PRIMARY KEY, since INTEGER NOT NULL)");
  }

  /**
   * A slot for the sandbox's next job: its own again, a free one under the cap, or the slot of
   * the tenant's longest-idle container (an idle container costs a restore, a waiting job its
   * whole wait). Refused only when every slot is busy.
   */
  take(sandboxId: string, cap: number, now: number): SlotGrant {
    this.sql.exec("DELETE FROM container_slots WHERE expires_at <= ?", now);
    const expiresAt = now + BUSY_SLOT_LEASE_MS;
    const own = this.sql.exec("UPDATE container_slots SET busy = 1, expires_at = ? WHERE sandbox_id = ?", expiresAt, sandboxId);
    if (own.rowsWritten > 0) return { granted: true };
    const held = Count.parse(this.sql.exec("SELECT COUNT(*) AS n FROM container_slots").one()).n;
    let evict: string | undefined;
    if (held >= cap) {
      const idle = this.sql.exec("SELECT sandbox_id FROM container_slots WHERE busy = 0 ORDER BY since LIMIT 1").toArray()[0];
      if (idle === undefined) {
        // Its place in line is kept from its first refusal.
        this.sql.exec("INSERT OR IGNORE INTO container_slot_waiters (sandbox_id, since) VALUES (?, ?)", sandboxId, now);
        return { granted: false, held };
      }
      evict = SlotRow.parse(idle).sandbox_id;
      this.sql.exec("DELETE FROM container_slots WHERE sandbox_id = ?", evict);
    }
    this.sql.exec("DELETE FROM container_slot_waiters WHERE sandbox_id = ?", sandboxId);
    this.sql.exec("INSERT INTO container_slots (sandbox_id, busy, expires_at, since) VALUES (?, 1, ?, ?)", sandboxId, expiresAt, now);
    return evict === undefined ? { granted: true } : { granted: true, evict };
  }

  /** The heartbeat of a running job; false when the slot was lost (lapsed and taken). */
  renew(sandboxId: string, now: number): boolean {
    return (
      this.sql.exec("UPDATE container_slots SET expires_at = ? WHERE sandbox_id = ? AND busy = 1", now + BUSY_SLOT_LEASE_MS, sandboxId)
        .rowsWritten > 0
    );
  }

  /**
   * The job ended; the container stays awake (and holds the slot) until `until`, when it would
   * sleep. Returns the sandbox that has waited longest for a slot, now to be woken (it may take
   * this one), and forgets it: should it not be waiting any more, the next one retries on its own.
   */
  idle(sandboxId: string, now: number, until: number): string | undefined {
    this.sql.exec("UPDATE container_slots SET busy = 0, expires_at = ?, since = ? WHERE sandbox_id = ?", until, now, sandboxId);
    const waiter = this.sql.exec("SELECT sandbox_id FROM container_slot_waiters ORDER BY since LIMIT 1").toArray()[0];
    if (waiter === undefined) return undefined;
    const next = SlotRow.parse(waiter).sandbox_id;
    this.sql.exec("DELETE FROM container_slot_waiters WHERE sandbox_id = ?", next);
    return next;
  }

  /** The sandbox's container is gone (the sandbox deleted or expired). */
  release(sandboxId: string): void {
    this.sql.exec("DELETE FROM container_slots WHERE sandbox_id = ?", sandboxId);
    this.sql.exec("DELETE FROM container_slot_waiters WHERE sandbox_id = ?", sandboxId);
  }
}
