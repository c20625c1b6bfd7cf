/**
 * Turns stored job records into API answers, with absolute download URLs for this origin. The
 * URLs are signed (access/signedUrls.ts): anyone holding one downloads without a key until it
 * expires. Without a signing key configured they are plain URLs that need the API key.
 */

import { z } from "@hono/zod-openapi";
import { presignR2Get, signPath } from "../access/signedUrls";
import { type AppConfig, MAX_SIGNED_URL_TTL_SECONDS } from "../config";
import type { JobRecord, JobView } from "../schemas/job";
import { r2Keys } from "../storage/layout";
import { contentDisposition } from "./downloads";

export function jobPath(jobId: string): string {
  return `/v1/jobs/${jobId}`;
}

export function artifactPath(jobId: string, path: string): string {
  return `${jobPath(jobId)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** The archive route's last segment, after `/v1/jobs/{jobId}/`. */
export const ARCHIVE_PATH_SUFFIX = "artifacts.tar.gz";

export function archivePath(jobId: string): string {
  return `${jobPath(jobId)}/${ARCHIVE_PATH_SUFFIX}`;
}

/** `?urlTtl=N`: how long the download URLs in an answer stay valid, in seconds (up to 7 days). */
export const UrlTtl = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_SIGNED_URL_TTL_SECONDS, `urlTtl is at most ${MAX_SIGNED_URL_TTL_SECONDS} seconds (7 days)`)
  .optional();

export class JobPresenter {
  constructor(
    private readonly origin: string,
    private readonly signing: AppConfig["signedUrls"],
    private readonly ttlSeconds: number = signing.defaultTtlSeconds,
  ) {}

  /** The same, with URLs that live `ttlSeconds`. */
  withTtl(ttlSeconds: number): JobPresenter {
    return new JobPresenter(this.origin, this.signing, ttlSeconds);
  }

  jobUrl(jobId: string): string {
    return `${this.origin}${jobPath(jobId)}`;
  }

  async present(record: JobRecord): Promise<JobView> {
    const { leaseUntil: _internal, ...visible } = record;
    const expires = Math.floor(Date.now() / 1000) + this.ttlSeconds;
    const signable = this.signing.keys.length > 0;
    const downloadUrl = async (path: string) => {
      const key = this.signing.keys[0];
      return key ? `${this.origin}${path}?${await signPath(key, record.tenant, path, expires)}` : `${this.origin}${path}`;
    };
    const artifactUrl = async (path: string) => {
      const r2 = this.signing.r2;
      if (!r2) return downloadUrl(artifactPath(record.id, path));
      const objectKey = r2Keys.artifact(record.tenant, record.id, record.attempts, path);
      return presignR2Get(r2, objectKey, this.ttlSeconds, contentDisposition("attachment", path.slice(path.lastIndexOf("/") + 1)));
    };
    return {
      ...visible,
      stdout: record.stdout && { ...record.stdout, url: await downloadUrl(`${jobPath(record.id)}/stdout`) },
      stderr: record.stderr && { ...record.stderr, url: await downloadUrl(`${jobPath(record.id)}/stderr`) },
      artifacts: await Promise.all(record.artifacts.map(async (artifact) => ({ ...artifact, url: await artifactUrl(artifact.path) }))),
      // Built by the Worker as it downloads, so always Worker-signed, even when artifacts go straight to R2.
      archiveUrl: await downloadUrl(archivePath(record.id)),
      urlsExpireAt: signable ? new Date(expires * 1000).toISOString() : null,
    };
  }
}
