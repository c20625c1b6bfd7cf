/** The webhook receiver test/setup/webhookReceiver.ts starts for the Worker tests. */
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    webhookReceiver: { url: string };
  }
}

export function receiverUrl(): string {
  return inject("webhookReceiver").url;
}
