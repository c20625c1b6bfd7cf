import { SELF, env } from "cloudflare:test";
import { expect, it } from "vitest";
it("runs a job end to end", async () => {
  const r = await SELF.fetch("http://local/v1/sandboxes/smoke/jobs", { method: "POST", body: JSON.stringify({ type: "run", command: "echo hello; mkdir -p dist; printf xyz > dist/a.bin", artifacts: ["dist/**"] }), headers: { "content-type": "application/json" } });
  const job = await r.json();
  console.log(r.status, JSON.stringify(job));
  const polled = await SELF.fetch(`http://local/v1/jobs/${(job as {id: string}).id}?wait=10`);
  console.log(polled.status, await polled.text());
  await env.JOB_STATUS.put("x", "1");
  await expect(env.JOB_STATUS.put("x", "2")).rejects.toThrow(/429/);
});
