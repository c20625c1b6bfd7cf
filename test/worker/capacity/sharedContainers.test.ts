/**
 * How the containers are shared, end to end: the Worker on a real local container host that
 * runs 3 containers at most (as max_instances caps an account), with TENANT_MAX_CONTAINERS 2
 * (the worker-capacity project in vitest.config.ts). One tenant's flood waits for its own
 * containers while another tenant's job runs; past the host's cap a job waits queued and runs
 * once a container frees up.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { JobView } from "../../../schemas/job";
import { sandboxKey } from "../../../storage/layout";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "../access/tenants";
import { uniqueSandbox } from "../client";

async function jobAs(key: string, jobId: string): Promise<JobView> {
  const response = await deployed(`/v1/jobs/${jobId}`, { key });
  expect(response.status).toBe(200);
  return JobView.parse(await response.json());
}

async function deleteSandboxAs(key: string, sandboxId: string): Promise<void> {
  expect((await deployed(`/v1/sandboxes/${sandboxId}`, { method: "DELETE", key })).status).toBe(200);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("containers shared between tenants", () => {
  it("a tenant's flood runs two at a time, its other jobs queued saying why; another tenant's job runs meanwhile", async () => {
    const flooder = await createKey(uniqueTenant("flood"));
    const other = await createKey(uniqueTenant("other"));
    const floodSandboxes = Array.from({ length: 4 }, (_, index) => uniqueSandbox(`flood${index}`));
    const otherSandbox = uniqueSandbox("other");
    try {
      const flood = await Promise.all(
        floodSandboxes.map((sandboxId, index) =>
          submitAs(flooder.key, sandboxId, { type: "run", command: `sleep 8; echo flood-${index}` }),
        ),
      );

      // Watched until every flood job has finished: never more than the tenant's cap running,
      // and the waiting ones queued with the tenant cap as their reason.
      const waitingReasons = new Map<string, string>();
      let mostRunning = 0;
      let otherJob: JobView | undefined;
      let otherFinishedWhileFloodRan = false;
      for (;;) {
        const views = await Promise.all(flood.map((job) => jobAs(flooder.key, job.id)));
        const running = views.filter((view) => view.status === "running").length;
        mostRunning = Math.max(mostRunning, running);
        for (const view of views) {
          if (view.status === "queued" && view.error?.code === "TENANT_CONTAINER_CAP") waitingReasons.set(view.id, view.error.message);
        }
        const unfinished = views.filter((view) => view.status === "queued" || view.status === "running").length;
        // Once the flood holds the tenant's cap, the other tenant submits.
        if (otherJob === undefined && running === 2)
          otherJob = await submitAs(other.key, otherSandbox, { type: "run", command: "echo other" });
        if (otherJob !== undefined && !otherFinishedWhileFloodRan && unfinished > 0) {
          const view = await jobAs(other.key, otherJob.id);
          if (view.status === "succeeded") otherFinishedWhileFloodRan = true;
        }
        if (unfinished === 0) break;
        await sleep(500);
      }

      expect(mostRunning).toBe(2);
      expect(waitingReasons.size).toBeGreaterThanOrEqual(2);
      for (const reason of waitingReasons.values()) {
        expect(reason).toMatch(
          /^Waiting for one of its tenant's containers: tenant flood-\S+ has 2 containers running jobs, its cap \(TENANT_MAX_CONTAINERS = 2\); it starts when one is free$/,
        );
      }
      // The other tenant's job ran while the flood was still going.
      expect(otherFinishedWhileFloodRan).toBe(true);

      // Every flood job ran, the waiting ones on the slots of the first ones' idle containers,
      // with no attempt spent on waiting.
      const finished = await Promise.all(flood.map((job) => finishedAs(flooder.key, job.id)));
      for (const job of finished) {
        expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
        expect(job.attempts).toBe(1);
      }
    } finally {
      await Promise.all([
        ...floodSandboxes.map((sandboxId) => deleteSandboxAs(flooder.key, sandboxId)),
        deleteSandboxAs(other.key, otherSandbox),
      ]);
    }
  });

  it("stops the idle container whose place the tenant's next job takes, even once its sandbox's object has restarted", async () => {
    const tenant = uniqueTenant("evict");
    const { key } = await createKey(tenant);
    const idle = uniqueSandbox("evict-idle");
    const second = uniqueSandbox("evict-second");
    const third = uniqueSandbox("evict-third");
    const hostRuns = async (sandboxId: string) => {
      const response = await fetch(`${env.LOCAL_SANDBOX_URL}/v1/containers/${sandboxKey(tenant, sandboxId)}`, {
        headers: { authorization: `Bearer ${env.LOCAL_SANDBOX_TOKEN}` },
      });
      return z.object({ running: z.boolean() }).parse(await response.json()).running;
    };
    const run = async (sandboxId: string) =>
      (await finishedAs(key, (await submitAs(key, sandboxId, { type: "run", command: "true" })).id)).status;
    try {
      expect(await run(idle)).toBe("succeeded");
      // Its Sandbox object restarts (a deploy, or evicted from memory) while the host keeps the container.
      const object = env.Sandbox.get(env.Sandbox.idFromName(sandboxKey(tenant, idle)));
      await runInDurableObject(object, (_instance, state) => state.abort("restarted")).catch(() => undefined);
      expect(await hostRuns(idle)).toBe(true);
      // The tenant's second slot, then the idle container's: taking it stops that container.
      expect(await run(second)).toBe("succeeded");
      expect(await run(third)).toBe("succeeded");
      expect(await hostRuns(idle)).toBe(false);
    } finally {
      await Promise.all([idle, second, third].map((sandboxId) => deleteSandboxAs(key, sandboxId)));
    }
  });

  it("past the account's container cap a job waits queued saying why, and runs once a container frees up", async () => {
    const first = await createKey(uniqueTenant("first"));
    const second = await createKey(uniqueTenant("second"));
    const late = await createKey(uniqueTenant("late"));
    const firstSandboxes = [uniqueSandbox("first0"), uniqueSandbox("first1")];
    const secondSandbox = uniqueSandbox("second");
    const lateSandbox = uniqueSandbox("late");
    try {
      // Three containers awake (idle after their jobs, until they sleep): the host's cap.
      const firstJobs = await Promise.all(
        firstSandboxes.map((sandboxId) => submitAs(first.key, sandboxId, { type: "run", command: "echo first" })),
      );
      const secondJob = await submitAs(second.key, secondSandbox, { type: "run", command: "echo second" });
      const held = await Promise.all([...firstJobs.map((job) => finishedAs(first.key, job.id)), finishedAs(second.key, secondJob.id)]);
      expect(held.map((job) => job.status)).toEqual(["succeeded", "succeeded", "succeeded"]);

      const waiting = await submitAs(late.key, lateSandbox, { type: "run", command: "echo late" });
      let seen: JobView | undefined;
      for (let tries = 0; tries < 120 && seen === undefined; tries++) {
        const view = await jobAs(late.key, waiting.id);
        expect(view.status).not.toBe("succeeded");
        if (view.status === "queued" && view.error?.code === "CONTAINER_CAPACITY") seen = view;
        else await sleep(250);
      }
      expect(seen?.error?.message).toMatch(/^Waiting for a free container: /);

      // The second tenant deletes its sandbox: its container goes, and the late job takes its place.
      await deleteSandboxAs(second.key, secondSandbox);
      const ran = await finishedAs(late.key, waiting.id);
      expect(ran.status, JSON.stringify(ran.error)).toBe("succeeded");
      expect(ran.attempts).toBe(1);
    } finally {
      await Promise.all([
        ...firstSandboxes.map((sandboxId) => deleteSandboxAs(first.key, sandboxId)),
        deleteSandboxAs(late.key, lateSandbox),
      ]);
    }
  });
});
