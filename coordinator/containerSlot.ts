/**
 * A sandbox's side of its tenant's container slots (access/containerSlots.ts): taken before a
 * job reaches the container, renewed while it runs, left idle when it ends until the container
 * would have gone to sleep. Taking the slot of one of the tenant's idle containers stops that
 * container first (its workspace saved), so the tenant's next job never waits on its own idle ones.
 */
import { tenantDirectoryFor } from "../access/tenantDirectory";
import type { SlotTake } from "../execution/jobTypes";
import { sandboxKey } from "../storage/layout";
import { coordinatorFor } from "./stubs";

/** A busy slot is renewed this often (its lease, BUSY_SLOT_LEASE_MS, is three times as long). */
const RENEW_EVERY_MS = 30_000;
/**
 * How long a container stays awake after its job: the SDK's default `sleepAfter` (10 minutes;
 * getSandbox is not given another), plus a minute to save its workspace before it stops.
 */
const IDLE_SLOT_MS = 11 * 60 * 1000;

export class ContainerSlot {
  private held = false;
  private renewedAt = 0;

  constructor(
    private readonly env: Env,
    private readonly tenant: string,
    private readonly sandboxId: string,
    /** TENANT_MAX_CONTAINERS. */
    private readonly cap: number,
    /** Settles once a stop of this sandbox's own container, asked for by a sandbox that took its old slot, has ended. */
    private readonly ownStopSettled: () => Promise<unknown>,
  ) {}

  /** Whether the job holds a slot now: its container is then its own to use, and no other sandbox may stop it. */
  get holds(): boolean {
    return this.held;
  }

  /** Takes the sandbox's slot, stopping the idle container whose slot it took, if any; refused at the tenant's cap. */
  async take(): Promise<SlotTake> {
    const grant = await this.directory().takeContainerSlot(this.sandboxId, this.cap);
    if (!grant.granted) {
      return {
        taken: false,
        reason: `tenant ${this.tenant} has ${grant.held} containers running jobs, its cap (TENANT_MAX_CONTAINERS = ${this.cap})`,
      };
    }
    this.held = true;
    this.renewedAt = Date.now();
    if (grant.evict !== undefined) await this.stopIdle(grant.evict);
    // This sandbox's idle slot may have been taken (and its container stopped) while its job waited to take one.
    await this.ownStopSettled();
    return { taken: true };
  }

  /** Called at each lease renewal of the running job: keeps the slot's own lease ahead of it. */
  renewIfDue(): void {
    if (!this.held || Date.now() - this.renewedAt < RENEW_EVERY_MS) return;
    this.renewedAt = Date.now();
    void this.directory()
      .renewContainerSlot(this.sandboxId)
      .then(
        (renewed) => renewed || console.warn(`sandbox ${this.tenant}.${this.sandboxId}: its container slot had lapsed`),
        (error: unknown) => console.warn(`sandbox ${this.tenant}.${this.sandboxId}: could not renew its container slot`, error),
      );
  }

  /**
   * The job is over: the slot stays with the container, idle, until it would sleep, and the
   * tenant's sandbox that has waited longest for a slot is woken to take it.
   */
  async idle(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      const waiting = await this.directory().idleContainerSlot(this.sandboxId, Date.now() + IDLE_SLOT_MS);
      if (waiting === undefined) return;
      await coordinatorFor(this.env.SANDBOX_COORDINATOR, sandboxKey(this.tenant, waiting)).containerSlotFree();
    } catch (error) {
      // The waiting job retries on its own within CAPACITY_RETRY_MS.
      console.warn(`sandbox ${this.tenant}.${this.sandboxId}: could not hand on its container slot`, error);
    }
  }

  /**
   * Before this sandbox starts its container: the one whose slot it took stops, freeing its
   * place among the account's containers too. Should that fail, this job goes on: the tenant
   * then has one container over its cap until the other one sleeps.
   */
  private async stopIdle(sandboxId: string): Promise<void> {
    const key = sandboxKey(this.tenant, sandboxId);
    await coordinatorFor(this.env.SANDBOX_COORDINATOR, key)
      .stopIdleContainer(key)
      .catch((error: unknown) => console.warn(`sandbox ${key}: could not stop its idle container`, error));
  }

  private directory() {
    return tenantDirectoryFor(this.env.TENANT_DIRECTORY, this.tenant);
  }
}
