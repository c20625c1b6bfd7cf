/**
 * Signing deliveries as Standard Webhooks does: `webhook-id`, `webhook-timestamp` (Unix seconds,
 * per try) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`),
 * with the `standardwebhooks` library, the same one a receiver verifies with.
 */
import { Webhook } from "standardwebhooks";

/** 32 random bytes, base64, after the `whsec_` prefix the spec names. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

export function signedHeaders(secret: string, webhookId: string, body: string, at: Date): Record<string, string> {
  return {
    "content-type": "application/json",
    "user-agent": "artifact-sandbox-webhooks/1",
    "webhook-id": webhookId,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(webhookId, at, body),
  };
}
