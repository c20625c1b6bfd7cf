/**
 * What runs now, read from the sweeper's worklist in R2 (`active/{sandboxKey}/{jobId}`, one
 * empty object per unfinished job; strongly consistent): unfinished jobs and the sandboxes they
 * are in, per tenant. One R2 list per 1,000 unfinished jobs, up to MAX_PAGES.
 */
import { r2Keys, tenantOf } from "../storage/layout";

const MAX_PAGES = 10;

export interface Activity {
  activeJobs: number;
  runningSandboxes: number;
}

/** Per tenant; `tenant` narrows the listing to that tenant's sandboxes. */
export async function currentActivity(bucket: R2Bucket, tenant?: string): Promise<Map<string, Activity>> {
  const sandboxes = new Map<string, Set<string>>();
  const jobs = new Map<string, number>();
  const prefix = tenant === undefined ? r2Keys.activePrefix : `${r2Keys.activePrefix}${tenant}.`;
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const listing = await bucket.list({ prefix, cursor, limit: 1000 });
    for (const object of listing.objects) {
      const key = object.key.slice(r2Keys.activePrefix.length).split("/")[0];
      if (!key?.includes(".")) continue;
      const owner = tenantOf(key);
      jobs.set(owner, (jobs.get(owner) ?? 0) + 1);
      sandboxes.set(owner, (sandboxes.get(owner) ?? new Set()).add(key));
    }
    if (!listing.truncated) break;
    cursor = listing.cursor;
  }
  return new Map([...jobs].map(([owner, count]) => [owner, { activeJobs: count, runningSandboxes: sandboxes.get(owner)?.size ?? 0 }]));
}

/** Tenants with at least one finished job: each listed once, when its first job finished. */
export async function tenantsWithMetrics(bucket: R2Bucket): Promise<string[]> {
  const tenants: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const listing = await bucket.list({ prefix: r2Keys.metricsTenantPrefix, cursor, limit: 1000 });
    tenants.push(...listing.objects.map((object) => object.key.slice(r2Keys.metricsTenantPrefix.length)));
    if (!listing.truncated) break;
    cursor = listing.cursor;
  }
  return tenants;
}
