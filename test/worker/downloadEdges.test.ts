/** Downloads at their edges: file names that look percent-encoded, and ranges past the end. */
import { describe, expect, it } from "vitest";
import { api, expectError, runJob, uniqueSandbox } from "./client";

describe("downloads", () => {
  it("serves an artifact whose name holds a percent sign, by its URL from the record", async () => {
    const job = await runJob(uniqueSandbox("pct-name"), {
      type: "run",
      command: "mkdir -p o && echo pct > 'o/%41.txt'",
      artifacts: ["o/**"],
    });
    const artifact = job.artifacts.find((candidate) => candidate.path === "o/%41.txt");
    if (!artifact) throw new Error(`no artifact o/%41.txt in ${JSON.stringify(job.artifacts)}`);
    const url = new URL(artifact.url);
    expect(await (await api(`${url.pathname}${url.search}`)).text()).toBe("pct\n");
  });

  it("answers 416 to a range that starts at or past the end", async () => {
    const job = await runJob(uniqueSandbox("range-end"), { type: "run", command: "printf 0123456789 > ten.txt", artifacts: ["ten.txt"] });
    const response = await api(`/v1/jobs/${job.id}/artifacts/ten.txt`, { headers: { range: "bytes=10-" } });
    expect(response.headers.get("content-range")).toBe("bytes */10");
    await expectError(response, 416, "RANGE_NOT_SATISFIABLE");
    const tail = await api(`/v1/jobs/${job.id}/artifacts/ten.txt`, { headers: { range: "bytes=8-" } });
    expect(tail.status).toBe(206);
    expect(await tail.text()).toBe("89");
  });
});
