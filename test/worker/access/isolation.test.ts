/**
 * Two tenants with the same sandbox ID: different sandboxes, files and jobs. Every route that
 * names a job or a sandbox answers the other tenant 404, never 403.
 */
import { packTar } from "modern-tar";
import { describe, expect, it } from "vitest";
import { BatchView, JobPageView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

describe("tenant isolation", () => {
  it("gives each tenant its own sandbox behind the same ID, and hides each one's jobs from the other", async () => {
    const acme = await createKey(uniqueTenant("acme"));
    const globex = await createKey(uniqueTenant("globex"));
    const sandbox = "build";
    const acmeJob = await submitAs(acme.key, sandbox, {
      type: "run",
      command: "echo acme-secret > owner.txt; cat owner.txt",
      artifacts: ["owner.txt"],
    });
    const globexJob = await submitAs(globex.key, sandbox, { type: "run", command: "cat owner.txt 2>&1; echo globex > owner.txt" });
    expect((await finishedAs(acme.key, acmeJob.id)).status).toBe("succeeded");
    expect((await finishedAs(globex.key, globexJob.id)).status).toBe("succeeded");
    // globex's sandbox "build" never saw acme's file.
    const globexOut = await deployed(`/v1/jobs/${globexJob.id}/stdout`, { key: globex.key });
    expect(await globexOut.text()).toContain("No such file");

    // Every route that names acme's job answers globex 404.
    for (const path of [
      `/v1/jobs/${acmeJob.id}`,
      `/v1/jobs/${acmeJob.id}/stdout`,
      `/v1/jobs/${acmeJob.id}/stderr`,
      `/v1/jobs/${acmeJob.id}/artifacts/owner.txt`,
      `/v1/jobs/${acmeJob.id}/artifacts.tar.gz`,
      `/v1/jobs/${acmeJob.id}/logs`,
    ]) {
      await expectError(await deployed(path, { key: globex.key }), 404, "JOB_NOT_FOUND");
    }
    await expectError(await deployed(`/v1/jobs/${acmeJob.id}/cancel`, { method: "POST", key: globex.key }), 404, "JOB_NOT_FOUND");
    // Listing the same sandbox ID shows each tenant only its own jobs.
    const listed = JobPageView.parse(await (await deployed(`/v1/sandboxes/${sandbox}/jobs`, { key: globex.key })).json());
    expect(listed.jobs.map((job) => job.id)).toEqual([globexJob.id]);
    // Deleting "build" as globex deletes globex's sandbox only: acme's file is still there.
    expect((await deployed(`/v1/sandboxes/${sandbox}`, { method: "DELETE", key: globex.key })).status).toBe(200);
    const check = await submitAs(acme.key, sandbox, { type: "run", command: "cat owner.txt" });
    expect((await finishedAs(acme.key, check.id)).status).toBe("succeeded");
    expect(await (await deployed(`/v1/jobs/${check.id}/stdout`, { key: acme.key })).text()).toBe("acme-secret\n");
    // acme still reads its own artifact.
    expect(await (await deployed(`/v1/jobs/${acmeJob.id}/artifacts/owner.txt`, { key: acme.key })).text()).toBe("acme-secret\n");
  });

  it("keeps batches and the original routes per tenant", async () => {
    const acme = await createKey(uniqueTenant("acme"));
    const globex = await createKey(uniqueTenant("globex"));
    const sandbox = "shared-name";
    const batch = await deployed("/v1/jobs", {
      method: "POST",
      key: acme.key,
      body: JSON.stringify({
        jobs: [{ sandboxId: sandbox, job: { type: "file", op: "write", path: "/workspace/a.txt", content: "acme" } }],
      }),
    });
    expect(batch.status).toBe(202);
    const {
      batchId,
      jobs: [written],
    } = BatchView.parse(await batch.json());
    if (!written) throw new Error("no job");
    await expectError(await deployed(`/v1/batches/${batchId}`, { key: globex.key }), 404, "JOB_NOT_FOUND");
    await expectError(await deployed(`/v1/batches/${batchId}/cancel`, { method: "POST", key: globex.key }), 404, "JOB_NOT_FOUND");
    expect((await finishedAs(acme.key, written.id)).status).toBe("succeeded");

    const readAs = (key: string) => deployed(`/file?path=/workspace/a.txt`, { key, headers: { "x-sandbox-id": sandbox } });
    expect(await (await readAs(acme.key)).json()).toEqual({ path: "/workspace/a.txt", content: "acme" });
    expect((await readAs(globex.key)).status).toBe(404);
    const run = await deployed("/run", {
      method: "POST",
      key: globex.key,
      headers: { "x-sandbox-id": sandbox },
      body: JSON.stringify({ command: "ls /workspace" }),
    });
    expect(await run.json()).toMatchObject({ output: "", exitCode: 0, success: true });
    // Without a key the original routes answer 401 in their own error shape.
    const anonymous = await deployed("/run", {
      method: "POST",
      headers: { "x-sandbox-id": sandbox },
      body: JSON.stringify({ command: "true" }),
    });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ code: "UNAUTHENTICATED", error: expect.stringContaining("Authorization") });
  });

  it("unpacks an upload into the uploader's sandbox only, and never copies in another tenant's artifacts", async () => {
    const acme = await createKey(uniqueTenant("acme"));
    const globex = await createKey(uniqueTenant("globex"));
    const sandbox = "shared-upload";
    const acmeJob = await submitAs(acme.key, sandbox, { type: "run", command: "echo acme-secret > owner.txt", artifacts: ["owner.txt"] });
    expect((await finishedAs(acme.key, acmeJob.id)).status).toBe("succeeded");

    const tar = await packTar([{ header: { name: "from-globex.txt", size: 6, type: "file" }, body: "globex" }]);
    const gzipped = new Uint8Array(await new Response(new Blob([tar]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    const uploaded = await deployed(`/v1/sandboxes/${sandbox}/archive?path=/workspace/src`, {
      method: "PUT",
      key: globex.key,
      body: gzipped,
      headers: { "content-type": "application/gzip", "content-length": String(gzipped.byteLength) },
    });
    expect(uploaded.status, await uploaded.clone().text()).toBe(202);
    expect((await finishedAs(globex.key, JobPageView.shape.jobs.element.parse(await uploaded.json()).id)).status).toBe("succeeded");
    const look = await submitAs(acme.key, sandbox, { type: "run", command: "ls -A /workspace" });
    expect((await finishedAs(acme.key, look.id)).status).toBe("succeeded");
    expect(await (await deployed(`/v1/jobs/${look.id}/stdout`, { key: acme.key })).text()).toBe("owner.txt\n");

    // An input naming acme's job, submitted by globex, is refused at submit: to globex that job does not exist.
    const before = JobPageView.parse(await (await deployed(`/v1/sandboxes/${sandbox}/jobs`, { key: globex.key })).json());
    const stealing = await deployed(`/v1/sandboxes/${sandbox}/jobs`, {
      method: "POST",
      key: globex.key,
      body: JSON.stringify({
        type: "run",
        command: "cat /workspace/in/owner.txt",
        inputs: [{ from: acmeJob.id, artifacts: ["owner.txt"], path: "/workspace/in" }],
      }),
    });
    expect(await expectError(stealing, 400, "INVALID_REQUEST")).toContain(`no job ${acmeJob.id}`);
    // Nothing of it was stored: globex's sandbox lists the same jobs as before.
    const after = JobPageView.parse(await (await deployed(`/v1/sandboxes/${sandbox}/jobs`, { key: globex.key })).json());
    expect(after.jobs.map((job) => job.id)).toEqual(before.jobs.map((job) => job.id));
    // acme itself may name it.
    const copying = await submitAs(acme.key, sandbox, {
      type: "run",
      command: "cat /workspace/in/owner.txt",
      inputs: [{ from: acmeJob.id, artifacts: ["owner.txt"], path: "/workspace/in" }],
    });
    expect((await finishedAs(acme.key, copying.id)).status).toBe("succeeded");
    expect(await (await deployed(`/v1/jobs/${copying.id}/stdout`, { key: acme.key })).text()).toBe("acme-secret\n");
  }, 60_000);
});
