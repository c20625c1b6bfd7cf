/** Download URLs in job records: they work without a key until they expire; any change to them is a 403. */
import { describe, expect, it } from "vitest";
import { JobView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

/** The URL's path and query, to send through the Worker under test. */
function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

describe("signed download URLs", () => {
  it("downloads without a key, and refuses a changed path, tenant or expiry, and an expired URL", async () => {
    const tenant = uniqueTenant("acme");
    const { key } = await createKey(tenant);
    const job = await submitAs(key, "signed", { type: "run", command: "echo one > a.txt; echo two > b.txt", artifacts: ["*.txt"] });
    const done = await finishedAs(key, job.id);
    const artifact = done.artifacts.find((candidate) => candidate.path === "a.txt");
    if (!artifact || !done.urlsExpireAt) throw new Error("no signed artifact URL");
    expect(Date.parse(done.urlsExpireAt) - Date.now()).toBeGreaterThan(59 * 60 * 1000);

    const url = pathOf(artifact.url);
    expect(await (await deployed(url)).text()).toBe("one\n");
    expect((await deployed(pathOf(done.stdout?.url ?? ""))).status).toBe(200);

    await expectError(await deployed(url.replace("/a.txt", "/b.txt")), 403, "INVALID_SIGNATURE");
    await expectError(await deployed(url.replace(`tenant=${tenant}`, "tenant=globex")), 403, "INVALID_SIGNATURE");
    const expires = new URL(artifact.url, "http://x").searchParams.get("expires") ?? "";
    await expectError(await deployed(url.replace(`expires=${expires}`, `expires=${Number(expires) + 3600}`)), 403, "INVALID_SIGNATURE");
    await expectError(await deployed(url, { method: "DELETE" }), 403, "INVALID_SIGNATURE");

    // A short lifetime asked for per request, then waited out.
    const shortLived = JobView.parse(await (await deployed(`/v1/jobs/${job.id}?urlTtl=1`, { key })).json());
    const shortUrl = pathOf(shortLived.artifacts[0]?.url ?? "");
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await expectError(await deployed(shortUrl), 403, "URL_EXPIRED");
    await expectError(await deployed(`/v1/jobs/${job.id}?urlTtl=604801`, { key }), 400, "INVALID_REQUEST");
  });
});
