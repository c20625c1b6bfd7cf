/**
 * One try of one delivery: the event's body, signed, POSTed to the endpoint with redirects off
 * and a 15-second limit. A 2xx is delivered; anything else (another status, a redirect, a
 * timeout, a refused destination) is a failed try, with what happened kept for the delivery log.
 */
import type { AttemptResult } from "./deliveries";
import { checkDestination } from "./destination";
import { signedHeaders } from "./signing";

/** A receiver has this long to answer 2xx. */
export const DELIVERY_TIMEOUT_MS = 15_000;

export interface DeliveryTask {
  url: string;
  secret: string;
  eventId: string;
  body: string;
}

export async function sendDelivery(task: DeliveryTask, allowPrivate: boolean, now = new Date()): Promise<AttemptResult> {
  const startedAt = Date.now();
  const destination = checkDestination(task.url, allowPrivate);
  if (!destination.ok) return { responseCode: null, error: `destination refused: ${destination.reason}`, durationMs: 0 };
  try {
    const response = await fetch(destination.url, {
      method: "POST",
      headers: signedHeaders(task.secret, task.eventId, task.body, now),
      body: task.body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    // Only the status matters; the body is not read (nor kept).
    await response.body?.cancel();
    const redirected = response.status >= 300 && response.status < 400;
    const retryAfter = Number(response.headers.get("retry-after"));
    return {
      responseCode: response.status,
      error: redirected ? "redirects are not followed" : response.ok ? null : `answered ${response.status}`,
      durationMs: Date.now() - startedAt,
      // Only the seconds form; an HTTP date is left to the schedule.
      ...((response.status === 429 || response.status === 503) && Number.isInteger(retryAfter) && retryAfter > 0
        ? { retryAfterSeconds: retryAfter }
        : {}),
    };
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return {
      responseCode: null,
      error: timedOut
        ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000} s`
        : `could not connect: ${error instanceof Error ? error.message : String(error)}`,
      durationMs: Date.now() - startedAt,
    };
  }
}
