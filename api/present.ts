/**
 * Turns stored job records into API answers, with absolute download URLs for this origin. The
 * URLs are signed (access/signedUrls.ts): anyone holding one downloads without a key until it
 * expires. Without a signing key configured they are plain URLs that need the API key. Artifact
 * URLs always go through the Worker: a file is a slice of its attempt's pack, which an R2
 * presigned URL (the whole object) cannot name.
 */

import { z } from "@hono/zod-openapi";
import { signPath } from "../access/signedUrls";
import { type AppConfig, MAX_SIGNED_URL_TTL_SECONDS } from "../config";
import { type ArtifactRef, type JobRecord, type JobView, withoutInternals } from "../schemas/job";

export function jobPath(jobId: string): string {
  return `/v1/jobs/${jobId}`;
}

export function artifactPath(jobId: string, path: string): string {
  return `${jobPath(jobId)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** The archive route's last segment, after `/v1/jobs/{jobId}/`. */
export const ARCHIVE_PATH_SUFFIX = "artifacts.tar.gz";

/** Every artifact of a job, a page at a time (api/artifactList.ts). */
export function artifactListPath(jobId: string): string {
  return `${jobPath(jobId)}/artifacts`;
}

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
    const { artifactIndex, ...visible } = withoutInternals(record);
    const expires = this.expires();
    return {
      ...visible,
      stdout: record.stdout && { ...record.stdout, url: await this.downloadUrl(record, `${jobPath(record.id)}/stdout`, expires) },
      stderr: record.stderr && { ...record.stderr, url: await this.downloadUrl(record, `${jobPath(record.id)}/stderr`, expires) },
      artifacts: await this.withUrls(record, record.artifacts, expires),
      artifactIndex: artifactIndex && {
        files: artifactIndex.files,
        bytes: artifactIndex.bytes,
        listUrl: `${this.origin}${artifactListPath(record.id)}`,
      },
      archiveUrl: await this.downloadUrl(record, archivePath(record.id), expires),
      urlsExpireAt: this.signing.keys.length > 0 ? new Date(expires * 1000).toISOString() : null,
    };
  }

  /** `artifacts` of `record`, each with its download URL; and when those URLs expire (null: unsigned). */
  async artifactsWithUrls(record: JobRecord, artifacts: ArtifactRef[]) {
    const expires = this.expires();
    const urlsExpireAt = this.signing.keys.length > 0 ? new Date(expires * 1000).toISOString() : null;
    return { artifacts: await this.withUrls(record, artifacts, expires), urlsExpireAt };
  }

  private expires(): number {
    return Math.floor(Date.now() / 1000) + this.ttlSeconds;
  }

  private withUrls(record: JobRecord, artifacts: ArtifactRef[], expires: number) {
    // Only the fields of an artifact reference: an index entry's offset stays internal.
    return Promise.all(
      artifacts.map(async ({ path, size, contentType, sha256, mode }) => ({
        path,
        size,
        contentType,
        sha256,
        mode,
        url: await this.downloadUrl(record, artifactPath(record.id, path), expires),
      })),
    );
  }

  private async downloadUrl(record: JobRecord, path: string, expires: number): Promise<string> {
    const key = this.signing.keys[0];
    return key ? `${this.origin}${path}?${await signPath(key, record.tenant, path, expires)}` : `${this.origin}${path}`;
  }
}
