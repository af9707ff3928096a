/**
 * The subscribers' process (started by the fan-out and memory cases): sets of N raw
 * subscribers and one writer on one server (`subscriberSets.ts`). `trigger` sends the next
 * Mutation on the set's writer.
 *
 * Requests (see `child.ts`): open, trigger, close, limits.
 */
import { execFileSync } from "node:child_process";
import { mutationMessage } from "./app.js";
import { serveRequests } from "./child.js";
import { SubscriberSets } from "./subscriberSets.js";

const sets = new SubscriberSets({ openingConcurrency: 100, openTimeoutMs: 90_000 });
/** The last Mutation request ID sent on each set's writer. */
const requestIds = new Map<string, number>();

serveRequests(async (message) => {
  const name = message.set as string;
  switch (message.op) {
    case "open":
      return sets.open(name, [message.url as string], message.writerUrl as string, message.n as number);
    case "trigger": {
      const requestId = (requestIds.get(name) ?? 0) + 1;
      requestIds.set(name, requestId);
      return sets.trigger(name, mutationMessage(requestId, message.doc as number));
    }
    case "close":
      requestIds.delete(name);
      return sets.close(name);
    case "limits":
      return { soft: Number(execFileSync("sh", ["-c", "ulimit -Sn"], { encoding: "utf8" }).trim()) };
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});
