/**
 * Cloudflare caps the operations one invocation may make (the KV limits page: 1,000 per
 * invocation; subrequests to R2, Queues, Durable Objects and fetch count too), and local
 * simulation enforces none of it. With OPERATION_BUDGET set (the tests set 1,000), every request,
 * queue, scheduled and alarm invocation counts its KV, R2, queue and Durable Object calls, and the
 * first call over the budget throws, so work that grows with its input cannot pass unnoticed.
 * Unset (as deployed), nothing is counted.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { z } from "zod";

export class OperationBudgetExceeded extends Error {
  constructor(invocation: string, budget: number) {
    super(`${invocation} made more than ${budget} storage, queue and Durable Object operations in one invocation`);
    this.name = "OperationBudgetExceeded";
  }
}

class OperationCounter {
  count = 0;
  constructor(
    readonly invocation: string,
    readonly budget: number,
  ) {}

  /** Counts one operation; the error to fail it with when it is over the budget. */
  note(): OperationBudgetExceeded | undefined {
    this.count++;
    if (this.count <= this.budget) return undefined;
    const error = new OperationBudgetExceeded(this.invocation, this.budget);
    // Logged as well: a caller that swallows errors must not hide it.
    console.error(error.message);
    return error;
  }
}

const current = new AsyncLocalStorage<OperationCounter>();

const Budget = z.coerce.number().int().positive().optional();

/** The budget from the Worker's vars: undefined (not counted) unless OPERATION_BUDGET is set. */
export function operationBudget(env: object): number | undefined {
  const value: unknown = Reflect.get(env, "OPERATION_BUDGET");
  return value === undefined || value === "" ? undefined : Budget.parse(value);
}

/** Runs one invocation's work under its own count, when a budget is set. */
export function withinBudget<T>(budget: number | undefined, invocation: string, work: () => T): T {
  return budget === undefined ? work() : current.run(new OperationCounter(invocation, budget), work);
}

/** How many operations the running invocation has made (0 when not counted). */
export function operationsSoFar(): number {
  return current.getStore()?.count ?? 0;
}

/** Counts every method call on `target` against the running invocation (if it is counted). */
function counted<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        // Binding calls answer with promises: so does one over the budget.
        const overBudget = current.getStore()?.note();
        return overBudget ? Promise.reject(overBudget) : Reflect.apply(value, object, args);
      };
    },
  });
}

/** A Durable Object namespace whose stubs count each call; getting an ID or a stub is free. */
function countedNamespace<T extends object>(namespace: T): T {
  return new Proxy(namespace, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property);
      if (typeof value !== "function") return value;
      if (property === "get" || property === "getByName") {
        return (...args: unknown[]) => {
          const stub: unknown = Reflect.apply(value, object, args);
          return typeof stub === "object" && stub !== null ? counted(stub) : stub;
        };
      }
      return (...args: unknown[]) => Reflect.apply(value, object, args);
    },
  });
}

// The counting consults the running invocation, so one counted copy of the bindings serves all.
const countedEnvs = new WeakMap<Env, Env>();

/** The bindings with every KV, R2, queue and Durable Object call counted. */
export function countedEnv(env: Env): Env {
  if (operationBudget(env) === undefined) return env;
  const known = countedEnvs.get(env);
  if (known) return known;
  const wrapped: Env = {
    ...env,
    LOOKUPS: counted(env.LOOKUPS),
    JOB_OUTPUT: counted(env.JOB_OUTPUT),
    JOB_QUEUE: counted(env.JOB_QUEUE),
    Sandbox: countedNamespace(env.Sandbox),
    SANDBOX_COORDINATOR: countedNamespace(env.SANDBOX_COORDINATOR),
    TENANT_DIRECTORY: countedNamespace(env.TENANT_DIRECTORY),
    TENANT_EVENTS: countedNamespace(env.TENANT_EVENTS),
    WEBHOOK_SENDER: countedNamespace(env.WEBHOOK_SENDER),
    WEBHOOK_QUEUE: counted(env.WEBHOOK_QUEUE),
  };
  countedEnvs.set(env, wrapped);
  return wrapped;
}
