/**
 * A call to the sandbox with a deadline on its answer. A command may stop or trace everything in
 * its container, the server included, so a call can hang for good: past its deadline the caller
 * moves on (the call is left to itself) and decides what to do with the container.
 */
import { toSandboxError } from "./errors";

export const NO_ANSWER = "no answer";

/** The call's answer, or NO_ANSWER once `ms` have passed; a failure arrives as a port error. */
export async function answerWithin<T>(call: Promise<T>, ms: number, subject: string): Promise<T | typeof NO_ANSWER> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof NO_ANSWER>((resolve) => {
    timer = setTimeout(() => resolve(NO_ANSWER), ms);
  });
  // Settled either way, so that a call abandoned here and failing later is no unhandled rejection.
  const settled = call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  try {
    const first = await Promise.race([settled, late]);
    if (first === NO_ANSWER) return NO_ANSWER;
    if ("error" in first) throw toSandboxError(first.error, subject);
    return first.value;
  } finally {
    clearTimeout(timer);
  }
}
