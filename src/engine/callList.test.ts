/**
 * The list of storage calls in flight (callList.ts): what the storage guard's watchdog walks to
 * fail calls past their deadline, and what each call leaves when it ends.
 */
import { describe, expect, it } from "vitest";
import { CallList, type Listed } from "./callList.js";

interface Call extends Listed {
  name: string;
  deadline: number;
}

const call = (name: string, deadline = 0): Call => ({ name, deadline, prev: null, next: null, listed: false });
/** The names on `list`, oldest first, read by taking everything off and putting it back. */
function names(list: CallList<Call>): string[] {
  const taken = list.removeWhere(() => true);
  for (const record of taken) list.add(record);
  return taken.map((record) => record.name);
}

describe("the list of calls in flight", () => {
  it("keeps calls in the order they started, and takes any one off, first, last or between", () => {
    const list = new CallList<Call>();
    const [a, b, c, d] = ["a", "b", "c", "d"].map((name) => call(name));
    for (const record of [a!, b!, c!, d!]) list.add(record);
    expect(list.size).toBe(4);
    expect(names(list)).toEqual(["a", "b", "c", "d"]);
    list.remove(c!);
    expect(names(list)).toEqual(["a", "b", "d"]);
    list.remove(a!);
    expect(names(list)).toEqual(["b", "d"]);
    list.remove(d!);
    expect(names(list)).toEqual(["b"]);
    list.remove(b!);
    expect(list.size).toBe(0);
    expect(names(list)).toEqual([]);
    // Empty again, it takes new calls as before.
    list.add(a!);
    expect(names(list)).toEqual(["a"]);
  });

  it("takes a call off once: the end of a call the watchdog already failed changes nothing", () => {
    const list = new CallList<Call>();
    const [late, other] = [call("late", 5), call("other", 50)];
    list.add(late);
    list.add(other);
    expect(list.removeWhere((record) => record.deadline <= 10).map((record) => record.name)).toEqual(["late"]);
    // The late call's storage answers after all: its end removes it again, which must not touch the list.
    list.remove(late);
    expect(list.size).toBe(1);
    expect(names(list)).toEqual(["other"]);
  });

  it("fails every call past its deadline in one pass, wherever it sits, and keeps the rest in order", () => {
    const list = new CallList<Call>();
    const deadlines = [1, 9, 2, 8, 3, 7, 4];
    deadlines.forEach((deadline, i) => list.add(call(`c${i}`, deadline)));
    const expired = list.removeWhere((record) => record.deadline <= 4);
    expect(expired.map((record) => record.name)).toEqual(["c0", "c2", "c4", "c6"]);
    expect(list.size).toBe(3);
    expect(names(list)).toEqual(["c1", "c3", "c5"]);
    for (const record of expired) expect(record.listed).toBe(false);
  });
});
