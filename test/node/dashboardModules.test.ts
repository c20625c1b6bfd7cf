/**
 * The dashboard's pure parts, without a browser: its routes (what a URL's hash shows, and the
 * hash a filter change writes) and the columns of a batch's graph. The pages themselves are
 * driven in Chromium by dashboard.test.ts.
 */
import { describe, expect, it } from "vitest";
import { stateLabel } from "../../dashboard/src/format";
import { columnsOf } from "../../dashboard/src/pipelineGraph";
import { listHref, parseRoute } from "../../dashboard/src/routes";
import { refreshWaitMs } from "../../dashboard/src/tenantJobs";
import { JobView } from "../../schemas/job";

describe("the dashboard's routes", () => {
  it("reads each page and its filters from the hash, ignoring filter values it does not know", () => {
    expect(parseRoute("")).toEqual({ view: "jobs", filters: { status: undefined, sandboxId: undefined, since: "24h" } });
    expect(parseRoute("#/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV")).toEqual({ view: "job", jobId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
    expect(parseRoute("#/batches/01ARZ3NDEKTSV4RRFFQ69G5FAV")).toEqual({ view: "batch", batchId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
    expect(parseRoute("#/sandboxes")).toEqual({ view: "sandboxes" });
    expect(parseRoute("#/batches?status=timed_out&sandbox=web&since=7d")).toEqual({
      view: "batches",
      filters: { status: "timed_out", sandboxId: "web", since: "7d" },
    });
    expect(parseRoute("#/jobs?status=exploded&since=forever")).toEqual({
      view: "jobs",
      filters: { status: undefined, sandboxId: undefined, since: "24h" },
    });
  });

  it("writes filters into a hash that reads back the same", () => {
    const filters = { status: "failed", sandboxId: "web", since: "1h" } as const;
    const href = listHref("jobs", filters);
    expect(href).toBe("#/jobs?status=failed&sandbox=web&since=1h");
    expect(parseRoute(href)).toEqual({ view: "jobs", filters });
  });
});

describe("a job's state as the page words it", () => {
  it("says when a failure was allowed, as the CLI's summary does, and calls a cancel a cancel", () => {
    expect(stateLabel({ status: "failed", error: { code: "NONZERO_EXIT" }, allowFailure: true })).toBe("failed (allowed)");
    expect(stateLabel({ status: "timed_out", error: { code: "TIMEOUT" }, allowFailure: true })).toBe("timed out (allowed)");
    expect(stateLabel({ status: "failed", error: { code: "NONZERO_EXIT" }, allowFailure: false })).toBe("failed");
    expect(stateLabel({ status: "failed", error: { code: "CANCELLED" }, allowFailure: true })).toBe("cancelled");
    expect(stateLabel({ status: "succeeded", error: null, allowFailure: true })).toBe("succeeded");
  });
});

describe("a batch's graph", () => {
  const job = (id: string, needs: string[]) =>
    JobView.parse({
      id,
      tenant: "local",
      sandboxId: "web",
      type: "run",
      request: { type: "run", command: "true", cwd: "/workspace", envKeys: [], stdinBytes: 0, timeoutMs: 1000, artifacts: [] },
      status: "queued",
      exitCode: null,
      createdAt: "2026-01-01T00:00:00.000Z",
      startedAt: null,
      finishedAt: null,
      durationMs: null,
      attempts: 0,
      error: null,
      stdout: null,
      stderr: null,
      artifacts: [],
      skippedArtifacts: [],
      artifactIndex: null,
      expiresAt: "2026-01-08T00:00:00.000Z",
      archiveUrl: "http://localhost/archive",
      urlsExpireAt: null,
      needs,
    });

  it("puts each job one column past the furthest job it needs", () => {
    const columns = columnsOf([job("build", []), job("lint", []), job("test", ["build"]), job("package", ["test", "lint", "build"])]);
    expect(Object.fromEntries(columns)).toEqual({ build: 0, lint: 0, test: 1, package: 2 });
  });

  it("ends on a cycle (which the API refuses) and on a need outside the batch", () => {
    const columns = columnsOf([job("a", ["b"]), job("b", ["a"]), job("c", ["elsewhere"])]);
    expect(columns.size).toBe(3);
    expect(columns.get("c")).toBe(0);
  });
});

describe("the lists' refresh", () => {
  it("waits 3 s, or 50 ms per request a refresh took when that is longer", () => {
    expect(refreshWaitMs(2)).toBe(3_000);
    expect(refreshWaitMs(201)).toBe(10_050);
  });
});
