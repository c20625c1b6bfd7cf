/**
 * Who the dashboard acts as. Deployed, the API requires a key: the page asks for one and keeps it
 * in sessionStorage only (gone when the tab closes, never sent anywhere but this origin's API).
 * A local stack lets requests without a key in as the tenant `local`, and so does the page.
 */
import { ApiError, ArtifactSandboxClient } from "../../client";

const KEY_ITEM = "artifact-sandbox.apiKey";

export function storedKey(): string | undefined {
  return sessionStorage.getItem(KEY_ITEM) ?? undefined;
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

export function clientFor(apiKey: string | undefined): ArtifactSandboxClient {
  return new ArtifactSandboxClient({ baseUrl: location.origin, apiKey });
}

export type Access = { kind: "ok"; client: ArtifactSandboxClient; anonymous: boolean } | { kind: "needs-key"; rejected: boolean };

/** Tries the stored key, or none: a 401 means the API wants one (again). */
export async function checkAccess(apiKey = storedKey()): Promise<Access> {
  const client = clientFor(apiKey);
  try {
    await client.listSandboxes();
    return { kind: "ok", client, anonymous: apiKey === undefined };
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || (error.status === 400 && error.code === "UNAUTHENTICATED"))) {
      if (apiKey !== undefined) forgetKey();
      return { kind: "needs-key", rejected: apiKey !== undefined };
    }
    throw error;
  }
}

/** Keeps a key the API accepted; a rejected one is not kept. */
export async function signIn(apiKey: string): Promise<Access> {
  const access = await checkAccess(apiKey.trim());
  if (access.kind === "ok") sessionStorage.setItem(KEY_ITEM, apiKey.trim());
  return access;
}

export function isUnauthenticated(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401;
}
