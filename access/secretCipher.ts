/**
 * Encrypts tenants' secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the
 * Worker secret SECRETS_ENCRYPTION_KEY. The tenant and the secret's name are the associated
 * data, so a stored value copied to another tenant or name fails to decrypt. Each value names
 * the key ID that sealed it, so the key can be rotated (`new:...,old:...`).
 */

export interface SealedSecret {
  keyId: string;
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

export interface CipherKey {
  id: string;
  secret: string;
}

export class SecretsNotConfiguredError extends Error {
  constructor() {
    super("Secrets are not configured: set the Worker secret SECRETS_ENCRYPTION_KEY (kid:secret, 32+ characters)");
    this.name = "SecretsNotConfiguredError";
  }
}

const encoder = new TextEncoder();
const derived = new Map<string, Promise<CryptoKey>>();

function aesKey(key: CipherKey): Promise<CryptoKey> {
  const cacheKey = `${key.id}:${key.secret}`;
  let found = derived.get(cacheKey);
  if (!found) {
    found = crypto.subtle
      .importKey("raw", encoder.encode(key.secret), "HKDF", false, ["deriveKey"])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: encoder.encode("artifact-sandbox secrets"), info: encoder.encode(key.id) },
          material,
          { name: "AES-GCM", length: 256 },
          false,
          ["encrypt", "decrypt"],
        ),
      );
    derived.set(cacheKey, found);
  }
  return found;
}

const associatedData = (tenant: string, name: string) => encoder.encode(`${tenant}\n${name}`);

export async function sealSecret(keys: CipherKey[], tenant: string, name: string, value: string): Promise<SealedSecret> {
  const key = keys[0];
  if (!key) throw new SecretsNotConfiguredError();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: associatedData(tenant, name) },
    await aesKey(key),
    encoder.encode(value),
  );
  return { keyId: key.id, iv, ciphertext: new Uint8Array(ciphertext) };
}

/** The value, or undefined when no configured key opens it (its key was rotated out, or it was tampered with). */
export async function openSecret(keys: CipherKey[], tenant: string, name: string, sealed: SealedSecret): Promise<string | undefined> {
  const key = keys.find((candidate) => candidate.id === sealed.keyId);
  if (!key) return undefined;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.iv, additionalData: associatedData(tenant, name) },
      await aesKey(key),
      sealed.ciphertext,
    );
    return new TextDecoder().decode(plain);
  } catch {
    return undefined;
  }
}
