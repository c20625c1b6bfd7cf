/**
 * A container start past the cap (`max_instances` deployed, SANDBOX_MAX_CONTAINERS locally) fails
 * the way Cloudflare's platform fails it, so the Worker can tell "capacity reached" from other
 * faults: the local seam, driven like the containers library drives workerd's handle, against a
 * real host that runs one container at most; and isContainerCapacityError on each form the
 * refusal takes on its way to the Worker. Then the tenant's container slots, in a real
 * TenantDirectory's SQLite, with the clock given: their leases lapse and nothing is held forever.
 * (The Worker end to end on a capped host: test/worker/capacity/.)
 */
import { env, runInDurableObject } from "cloudflare:test";
import { ContainerUnavailableError } from "@cloudflare/sandbox";
import { describe, expect, it } from "vitest";
import { BUSY_SLOT_LEASE_MS, ContainerSlots } from "../../access/containerSlots";
import { tenantDirectoryFor } from "../../access/tenantDirectory";
import { isContainerCapacityError } from "../../sandbox/errors";
import { LocalContainerHandle, MAX_INSTANCES_EXCEEDED } from "../../sandbox/localContainer";
import { uniqueTenant } from "./access/tenants";
import { uniqueSandbox } from "./client";

/** The capped host vitest.config.ts adds (not in wrangler.jsonc, so not in Env). */
function cappedHost(): { url: string; token: string } {
  const url: unknown = Reflect.get(env, "TEST_CAPPED_HOST_URL");
  if (typeof url !== "string") throw new Error("vitest.config.ts defines no TEST_CAPPED_HOST_URL binding");
  return { url, token: env.LOCAL_SANDBOX_TOKEN };
}

function handle(key: string): LocalContainerHandle {
  return new LocalContainerHandle(cappedHost(), async () => key);
}

/** Starts it as the containers library does, which always watches the monitor (a destroy ends it with 137). */
function start(container: LocalContainerHandle): void {
  container.start();
  container.monitor().catch(() => undefined);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

describe("a container start past the cap", () => {
  it("fails as Cloudflare's does: the monitor rejects with the platform's max_instances message, the port is not listening", async () => {
    const first = handle(uniqueSandbox("cap-first"));
    const second = handle(uniqueSandbox("cap-second"));
    try {
      start(first);
      expect((await first.getTcpPort(3000).fetch("http://container/api/ping")).status).toBe(200);

      second.start();
      const monitored = await rejection(second.monitor());
      expect(monitored).toBeInstanceOf(Error);
      expect(monitored instanceof Error && monitored.message).toBe(MAX_INSTANCES_EXCEEDED);
      expect(isContainerCapacityError(monitored)).toBe(true);
      expect(second.running).toBe(false);
      // What the containers library sees next: not listening, and not running, so it rethrows the
      // monitor's error instead of waiting for a container that is booting.
      const fetched = await rejection(second.getTcpPort(3000).fetch("http://container/api/ping"));
      expect(fetched instanceof Error && fetched.message).toMatch(/^the container is not listening/);

      // Once a slot is free the same start succeeds.
      await first.destroy();
      start(second);
      expect((await second.getTcpPort(3000).fetch("http://container/api/ping")).status).toBe(200);
    } finally {
      await Promise.all([first.destroy(), second.destroy()]);
    }
  });
});

describe("isContainerCapacityError", () => {
  const platformMessage = MAX_INSTANCES_EXCEEDED;

  it("recognises the refusal in each form it reaches the Worker", () => {
    // As the platform (and the local seam) raise it.
    expect(isContainerCapacityError(new Error(platformMessage))).toBe(true);
    // As the SDK types it: ContainerUnavailableError with reason max_container_instances_exceeded.
    const typed = new ContainerUnavailableError({
      code: "CONTAINER_UNAVAILABLE",
      message: platformMessage,
      context: { reason: "max_container_instances_exceeded", retryable: true, originalMessage: platformMessage },
      httpStatus: 503,
      timestamp: new Date().toISOString(),
    });
    expect(isContainerCapacityError(typed)).toBe(true);
    // Across RPC from the Sandbox Durable Object: a plain Error whose message starts with the class name.
    expect(isContainerCapacityError(new Error(`ContainerUnavailableError: ${platformMessage}`))).toBe(true);
    // A stream call's failure carries the SDK's 503 body as text.
    const body = JSON.stringify({
      code: "CONTAINER_UNAVAILABLE",
      message: platformMessage,
      context: { reason: "max_container_instances_exceeded" },
    });
    expect(isContainerCapacityError(new Error(`HTTP error! status: 503 - ${body}`))).toBe(true);
    // Wrapped as the cause of another error.
    expect(isContainerCapacityError(new Error("job failed", { cause: new Error(platformMessage) }))).toBe(true);
  });

  it("tells it from other container faults", () => {
    for (const other of [
      new Error("there is no container instance that can be provided to this durable object"),
      new Error("the container is not listening on port 3000"),
      new Error("container exited with unexpected exit code: 137"),
      new Error("Containers have not been enabled for this Durable Object class"),
      new ContainerUnavailableError({
        code: "CONTAINER_UNAVAILABLE",
        message: "Container is starting",
        context: { reason: "container_starting", retryable: true },
        httpStatus: 503,
        timestamp: new Date().toISOString(),
      }),
      "Maximum number of retries exceeded",
      undefined,
      null,
    ]) {
      expect(isContainerCapacityError(other)).toBe(false);
    }
  });
});

/** Runs `check` against the container slots of a fresh tenant's real TenantDirectory. */
async function withSlots(check: (slots: ContainerSlots) => void): Promise<void> {
  await runInDurableObject(tenantDirectoryFor(env.TENANT_DIRECTORY, uniqueTenant("slots")), (_instance, state) => {
    check(new ContainerSlots(state.storage.sql));
  });
}

describe("a tenant's container slots", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("grants up to the cap, then gives the longest-idle slot to the next sandbox, and refuses when all are busy", async () => {
    await withSlots((slots) => {
      expect(slots.take("a", 2, now)).toEqual({ granted: true });
      expect(slots.take("b", 2, now)).toEqual({ granted: true });
      expect(slots.take("c", 2, now)).toEqual({ granted: false, held: 2 });
      // A sandbox that holds a slot gets it again, over the cap or not.
      expect(slots.take("a", 2, now + 1000)).toEqual({ granted: true });

      slots.idle("b", now + 2000, now + 600_000);
      slots.idle("a", now + 3000, now + 600_000);
      expect(slots.take("c", 2, now + 4000)).toEqual({ granted: true, evict: "b" });
      expect(slots.take("d", 2, now + 5000)).toEqual({ granted: true, evict: "a" });
      expect(slots.take("e", 2, now + 6000)).toEqual({ granted: false, held: 2 });
    });
  });

  it("names the sandbox that has waited longest when a job ends, each waiter once", async () => {
    await withSlots((slots) => {
      expect(slots.take("a", 1, now).granted).toBe(true);
      expect(slots.take("first", 1, now + 1000).granted).toBe(false);
      expect(slots.take("second", 1, now + 2000).granted).toBe(false);
      // A retry keeps its place in line.
      expect(slots.take("first", 1, now + 3000).granted).toBe(false);
      expect(slots.idle("a", now + 4000, now + 600_000)).toBe("first");
      expect(slots.take("first", 1, now + 5000)).toEqual({ granted: true, evict: "a" });
      expect(slots.idle("first", now + 6000, now + 600_000)).toBe("second");
      expect(slots.idle("first", now + 7000, now + 600_000)).toBeUndefined();
    });
  });

  it("reclaims a busy slot whose coordinator stopped renewing it, and keeps one that is renewed", async () => {
    await withSlots((slots) => {
      expect(slots.take("renewed", 2, now).granted).toBe(true);
      expect(slots.take("vanished", 2, now).granted).toBe(true);
      expect(slots.renew("renewed", now + BUSY_SLOT_LEASE_MS - 1000)).toBe(true);
      // The vanished coordinator's lease has lapsed: its slot goes to the next sandbox, no eviction needed.
      expect(slots.take("next", 2, now + BUSY_SLOT_LEASE_MS)).toEqual({ granted: true });
      expect(slots.take("another", 2, now + BUSY_SLOT_LEASE_MS + 1000)).toEqual({ granted: false, held: 2 });
      // A lapsed slot cannot be renewed into existence again.
      expect(slots.renew("vanished", now + BUSY_SLOT_LEASE_MS + 1000)).toBe(false);
    });
  });

  it("frees an idle slot when its container would have slept, and a released one at once", async () => {
    await withSlots((slots) => {
      expect(slots.take("sleeps", 1, now).granted).toBe(true);
      slots.idle("sleeps", now + 1000, now + 60_000);
      // Before then, taking it means stopping its container; after, it is simply free.
      expect(slots.take("next", 1, now + 60_000)).toEqual({ granted: true });
      slots.release("next");
      expect(slots.take("last", 1, now + 61_000)).toEqual({ granted: true });
    });
  });
});
