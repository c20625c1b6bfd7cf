/**
 * Stacks the benchmark started, ended when it is interrupted (Ctrl-C, a timeout's SIGTERM): a
 * dev stack runs in its own process group and would otherwise outlive the benchmark.
 */
import type { DevProcess } from "../scripts/devProcess";
import { sleep } from "./stats";

const running = new Set<DevProcess>();

/** Registers the stack until `stopStack` ends it. */
export function track(stack: DevProcess): DevProcess {
  running.add(stack);
  return stack;
}

/** Stops the stack as Ctrl-C does; one that has not exited 20 s later is SIGKILLed. */
export async function stopStack(stack: DevProcess): Promise<void> {
  const stopped = await Promise.race([stack.stop().then(() => true), sleep(20_000).then(() => false)]);
  if (!stopped) await stack.kill();
  running.delete(stack);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void Promise.all([...running].map((stack) => stack.kill())).finally(() => process.exit(130));
  });
}
