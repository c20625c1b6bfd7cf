/**
 * What runs now, per tenant: its directory's count of unfinished jobs and of the sandboxes they
 * are in (kept by admissions and each coordinator's reports). One Durable Object call a tenant.
 */
import { type TenantDirectory, tenantDirectoryFor } from "../access/tenantDirectory";
import { r2Keys } from "../storage/layout";

const MAX_PAGES = 10;

export interface Activity {
  activeJobs: number;
  runningSandboxes: number;
}

export async function currentActivity(
  directories: DurableObjectNamespace<TenantDirectory>,
  tenants: string[],
): Promise<Map<string, Activity>> {
  const activities = await Promise.all(
    tenants.map(async (tenant) => [tenant, await tenantDirectoryFor(directories, tenant).activity()] as const),
  );
  return new Map(activities);
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
