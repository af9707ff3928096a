/**
 * The subscribers' process for case 3 (started through bench/transport/child.ts): sets of N raw
 * subscribers (`../transport/subscriberSets.ts`), subscriber `i` connected to
 * `urls[i % urls.length]`, so N subscribers are split evenly over the nodes given, and one
 * writer. `trigger` sends the message it is given on the writer and reports the first and last
 * update, overall and per node. Walk-in nodes and the floor processes are treated exactly alike.
 *
 * Requests (see `../transport/child.ts`): open, trigger, close.
 */
import { serveRequests } from "../transport/child.js";
import { SubscriberSets } from "../transport/subscriberSets.js";

const sets = new SubscriberSets({ openingConcurrency: 50, openTimeoutMs: 120_000 });

serveRequests(async (message) => {
  switch (message.op) {
    case "open":
      return sets.open(message.set as string, message.urls as string[], message.writerUrl as string, message.n as number);
    case "trigger":
      return sets.trigger(message.set as string, message.message as string);
    case "close":
      await sets.close(message.set as string);
      return undefined;
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});
