/**
 * Which live queries a commit touches, found without looking at the others.
 *
 * A commit invalidates a live query when one of the keys it wrote falls in one of the key
 * ranges the query read (`readSet.ts`). Testing every live query's read set on every commit
 * made a commit's cost grow with the number of live queries, touched or not: with 100,000
 * distinct live queries on one server, a bystander's round trip went from 7 ms to 70 ms at the
 * median (bench/reliability, floods). Here each index has an interval tree of the ranges read
 * on it, so a written key finds the ranges that contain it in O(log n + m) for n ranges on that
 * index and m of them hit, and an index nobody reads costs one map lookup.
 *
 * The tree is a treap (a binary search tree kept balanced by random priorities) ordered by
 * lower bound, each node holding the highest upper bound in its subtree. A stabbing query for
 * key k (`stab`) then skips a subtree whose highest upper bound is below k, and every node
 * to the right of one whose lower bound is above k. Step by step, at a node:
 *  1. If the subtree's highest upper bound does not reach k, no range in it contains k: stop.
 *  2. Search the left subtree (lower bounds at or below this node's: some may contain k).
 *  3. If this node's lower bound is above k, so is every lower bound in its right subtree:
 *     stop. Otherwise report this node if its upper bound reaches k, and search the right.
 * A node's range contains k exactly when its lower bound is at or below k (3) and its upper
 * bound reaches k, with the same inclusive/exclusive and unbounded rules as `rangeContains`,
 * so the answer is the same as testing every range (`readRangeIndex.test.ts` checks it against
 * `ReadSet.firstOverlap` on random ranges and writes).
 *
 * A query that read many ranges on one index (a query may read up to 16,384 documents, each a
 * point range on `by_id`) gets one node spanning them all instead of one each, and a key that
 * falls in the span is then checked against those ranges one by one. Why: replacing a query's
 * ranges after each re-run costs a tree operation per node, and 16,384 of them took 50-80 ms
 * (a scratch loop under tsx), more than such a query's own run would leave room for. A spanning
 * node costs what testing its ranges cost before this index existed, and only for the keys
 * inside its span.
 */
import { compareBytes } from "../values/compare.js";
import type { KeyBound, KeyRange } from "../storage/types.js";
import { rangeContains } from "../storage/keyRange.js";
import type { ReadSet, WriteSet } from "./readSet.js";

/** The highest upper bound of a subtree: `null` is unbounded (above every key). */
type Upper = KeyBound | null;

/** Above this many ranges on one index, an owner's ranges there share one spanning node (module comment). */
const MAX_NODES_PER_INDEX = 32;

class Node<T> {
  left: Node<T> | null = null;
  right: Node<T> | null = null;
  /** Highest upper bound in this node's subtree, itself included. */
  max: Upper;

  constructor(
    readonly indexId: string,
    readonly lower: KeyBound | undefined,
    readonly upper: Upper,
    readonly owner: T,
    /** Breaks ties between equal lower bounds, so that every node has a place of its own. */
    readonly seq: number,
    readonly priority: number,
    /** For a spanning node, the ranges it spans: a key in the span must fall in one of them. */
    readonly spanned: readonly KeyRange[] | null,
  ) {
    this.max = upper;
  }
}

/** Order of lower bounds: unbounded first, then by key, an inclusive bound before an exclusive one on the same key. */
function compareLower(a: KeyBound | undefined, b: KeyBound | undefined): number {
  if (a === undefined) return b === undefined ? 0 : -1;
  if (b === undefined) return 1;
  const c = compareBytes(a.key, b.key);
  if (c !== 0) return c;
  return a.inclusive === b.inclusive ? 0 : a.inclusive ? -1 : 1;
}

/** Order of upper bounds: by key, an exclusive bound below an inclusive one on the same key, unbounded last. */
function compareUpper(a: Upper, b: Upper): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  const c = compareBytes(a.key, b.key);
  if (c !== 0) return c;
  return a.inclusive === b.inclusive ? 0 : a.inclusive ? 1 : -1;
}

function higher(a: Upper, b: Upper): Upper {
  return compareUpper(a, b) >= 0 ? a : b;
}

/** Whether a range's lower bound lets `key` in. */
function lowerAdmits(lower: KeyBound | undefined, key: Uint8Array): boolean {
  if (lower === undefined) return true;
  const c = compareBytes(lower.key, key);
  return c < 0 || (c === 0 && lower.inclusive);
}

/** Whether an upper bound (a range's, or a subtree's highest) lets `key` in. */
function upperAdmits(upper: Upper, key: Uint8Array): boolean {
  if (upper === null) return true;
  const c = compareBytes(key, upper.key);
  return c < 0 || (c === 0 && upper.inclusive);
}

function refresh<T>(node: Node<T>): void {
  let max = node.upper;
  if (node.left !== null) max = higher(max, node.left.max);
  if (node.right !== null) max = higher(max, node.right.max);
  node.max = max;
}

/** Order of nodes in the tree: by lower bound, then by insertion. */
function compareNodes<T>(a: Node<T>, b: Node<T>): number {
  return compareLower(a.lower, b.lower) || a.seq - b.seq;
}

function insert<T>(root: Node<T> | null, node: Node<T>): Node<T> {
  if (root === null) return node;
  if (compareNodes(node, root) < 0) {
    root.left = insert(root.left, node);
    if (root.left.priority > root.priority) root = rotateRight(root);
  } else {
    root.right = insert(root.right, node);
    if (root.right.priority > root.priority) root = rotateLeft(root);
  }
  refresh(root);
  return root;
}

function remove<T>(root: Node<T> | null, node: Node<T>): Node<T> | null {
  if (root === null) return null;
  if (root === node) return merge(root.left, root.right);
  if (compareNodes(node, root) < 0) root.left = remove(root.left, node);
  else root.right = remove(root.right, node);
  refresh(root);
  return root;
}

/** Joins two treaps, every node of `a` before every node of `b`. */
function merge<T>(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.priority > b.priority) {
    a.right = merge(a.right, b);
    refresh(a);
    return a;
  }
  b.left = merge(a, b.left);
  refresh(b);
  return b;
}

function rotateRight<T>(node: Node<T>): Node<T> {
  const top = node.left!;
  node.left = top.right;
  top.right = node;
  refresh(node);
  refresh(top);
  return top;
}

function rotateLeft<T>(node: Node<T>): Node<T> {
  const top = node.right!;
  node.right = top.left;
  top.left = node;
  refresh(node);
  refresh(top);
  return top;
}

/** Calls `hit` with the owner of every range under `node` that contains `key` (module comment, 1-3). */
function stab<T>(node: Node<T> | null, key: Uint8Array, hit: (owner: T) => void): void {
  while (node !== null && upperAdmits(node.max, key)) {
    stab(node.left, key, hit);
    if (!lowerAdmits(node.lower, key)) return;
    if (upperAdmits(node.upper, key) && (node.spanned === null || node.spanned.some((range) => rangeContains(range, key)))) hit(node.owner);
    node = node.right;
  }
}

/** The lowest lower bound and the highest upper bound of `ranges`: every key in one of them is between the two. */
function spanOf(ranges: readonly KeyRange[]): { lower: KeyBound | undefined; upper: Upper } {
  let lower = ranges[0]!.lower;
  let upper: Upper = ranges[0]!.upper ?? null;
  for (let i = 1; i < ranges.length; i++) {
    const range = ranges[i]!;
    if (compareLower(range.lower, lower) < 0) lower = range.lower;
    upper = higher(upper, range.upper ?? null);
  }
  return { lower, upper };
}

/** A random priority for a new node: what keeps the treap's expected depth logarithmic. */
function randomPriority(): number {
  return Math.random();
}

export class ReadRangeIndex<T> {
  private readonly trees = new Map<string, Node<T> | null>();
  /**
   * The nodes of each owner's ranges, to take them out again: the node itself for an owner of
   * one range (most live queries read one), not an array of one, since a server may hold a
   * hundred thousand of them.
   */
  private readonly registered = new Map<T, Node<T> | Node<T>[]>();
  private seq = 0;

  /** Owners with ranges registered. */
  get size(): number {
    return this.registered.size;
  }

  /** Registers `readSet`'s ranges for `owner`, replacing whatever it had registered. */
  set(owner: T, readSet: ReadSet): void {
    this.delete(owner);
    const nodes: Node<T>[] = [];
    for (const [indexId, ranges] of readSet.ranges) {
      let root = this.trees.get(indexId) ?? null;
      if (ranges.length > MAX_NODES_PER_INDEX) {
        const span = spanOf(ranges);
        const node = new Node(indexId, span.lower, span.upper, owner, this.seq++, randomPriority(), ranges);
        root = insert(root, node);
        nodes.push(node);
      } else {
        for (const range of ranges) {
          const node = new Node(indexId, range.lower, range.upper ?? null, owner, this.seq++, randomPriority(), null);
          root = insert(root, node);
          nodes.push(node);
        }
      }
      this.trees.set(indexId, root);
    }
    if (nodes.length > 0) this.registered.set(owner, nodes.length === 1 ? nodes[0]! : nodes);
  }

  /** Forgets `owner`'s ranges. */
  delete(owner: T): void {
    const registered = this.registered.get(owner);
    if (registered === undefined) return;
    this.registered.delete(owner);
    for (const node of Array.isArray(registered) ? registered : [registered]) {
      const root = remove(this.trees.get(node.indexId) ?? null, node);
      if (root === null) this.trees.delete(node.indexId);
      else this.trees.set(node.indexId, root);
    }
  }

  /**
   * Calls `hit` with each owner one of whose ranges contains a key of `writes`: exactly the
   * owners whose read set's `firstOverlap(writes)` is not null. An owner may be reported more
   * than once (for several keys or ranges); callers dedupe.
   */
  touched(writes: WriteSet, hit: (owner: T) => void): void {
    // No live query at all (a script, a batch job): not even a lookup per index written.
    if (this.trees.size === 0) return;
    for (const indexId of writes.keys()) {
      const root = this.trees.get(indexId);
      if (root === undefined || root === null) continue;
      const keys = writes.get(indexId)!;
      for (let k = 0; k < keys.length; k++) stab(root, keys[k]!, hit);
    }
  }

  /** Whether any of these writes falls in a range read on its index: `touched`, without saying whose. */
  touchesAny(writeSets: Iterable<WriteSet>): boolean {
    if (this.trees.size === 0) return false;
    let hit = false;
    const mark = (): void => {
      hit = true;
    };
    for (const writes of writeSets) {
      this.touched(writes, mark);
      if (hit) return true;
    }
    return false;
  }
}

