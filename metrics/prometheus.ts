/**
 * The Prometheus text exposition (format 0.0.4) of every tenant's metrics, for GET /metrics:
 * counters and histograms since the tenant's first job, gauges of what runs now.
 */

import type { Activity } from "./activity";
import { BUCKET_BOUNDS_SECONDS } from "./histogram";
import type { HistogramName, Totals } from "./rollup";

const PREFIX = "artifact_sandbox";

const HISTOGRAMS: Record<HistogramName, { name: string; help: string }> = {
  duration: { name: `${PREFIX}_job_duration_seconds`, help: "Run time of finished jobs, start to finish." },
  queue_wait: { name: `${PREFIX}_queue_wait_seconds`, help: "Time finished jobs waited from submit to start." },
};

function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function prometheusText(totals: Map<string, Totals>, activity: Map<string, Activity>): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  family(`${PREFIX}_jobs_total`, "counter", "Jobs finished, by tenant and status (a cancelled job is failed).");
  for (const [tenant, figures] of totals) {
    for (const [status, count] of Object.entries(figures.jobs)) {
      lines.push(`${PREFIX}_jobs_total{tenant="${label(tenant)}",status="${label(status)}"} ${count}`);
    }
  }
  for (const metric of ["duration", "queue_wait"] as const) {
    const { name, help } = HISTOGRAMS[metric];
    family(name, "histogram", help);
    for (const [tenant, figures] of totals) {
      const histogram = figures.histograms[metric];
      let cumulative = 0;
      histogram.buckets.forEach((count, index) => {
        cumulative += count;
        const bound = BUCKET_BOUNDS_SECONDS[index];
        lines.push(`${name}_bucket{tenant="${label(tenant)}",le="${bound === undefined ? "+Inf" : bound}"} ${cumulative}`);
      });
      lines.push(
        `${name}_sum{tenant="${label(tenant)}"} ${histogram.sumSeconds}`,
        `${name}_count{tenant="${label(tenant)}"} ${histogram.count}`,
      );
    }
  }
  family(`${PREFIX}_artifact_bytes_total`, "counter", "Artifact bytes collected by finished jobs.");
  for (const [tenant, figures] of totals) lines.push(`${PREFIX}_artifact_bytes_total{tenant="${label(tenant)}"} ${figures.artifactBytes}`);
  family(`${PREFIX}_active_jobs`, "gauge", "Jobs queued or running now.");
  for (const [tenant, now] of activity) lines.push(`${PREFIX}_active_jobs{tenant="${label(tenant)}"} ${now.activeJobs}`);
  family(`${PREFIX}_running_sandboxes`, "gauge", "Sandboxes with a queued or running job now.");
  for (const [tenant, now] of activity) lines.push(`${PREFIX}_running_sandboxes{tenant="${label(tenant)}"} ${now.runningSandboxes}`);
  return `${lines.join("\n")}\n`;
}
