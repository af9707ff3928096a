/**
 * Full-text search indexes: Convex's `searchIndex` and `withSearchIndex`, kept in the engine's
 * own versioned index entries, so a search is transactional, reactive and served by every
 * storage (SQLite and PostgreSQL) with nothing else to run or keep in step.
 *
 * The entries. A document has one entry per distinct word of its search field (at most
 * `SEARCH_LIMITS.wordsPerDocument`), keyed `[word, filter group, document ID]`:
 *
 * - a word is a run of letters, marks and digits in any script, lowercased (`words`); a word
 *   longer than `SEARCH_LIMITS.wordChars` is cut to its first ones, in the text and in the
 *   query alike (`words` says why);
 * - the filter group is a 32-bit hash of the document's filter field values (`filterGroup`),
 *   so a search that gives every filter field reads only the entries of documents with those
 *   values: one key range, `[word, group]`. A hash rather than the values keeps each entry
 *   small whatever the filter fields hold; two groups that share a hash are told apart by
 *   checking each document's values, which every search does anyway;
 * - the document ID makes the key unique, and (IDs grow with time) puts newer documents later.
 *
 * A write of a document computes its entries before and after, and the commit removes the ones
 * it lost and adds the ones it gained (transaction.ts, `buildWrites`). Every key is touched
 * either way, so a live search that read a word's range re-runs when any document with that
 * word changes, including a change of its filter fields or of its other words.
 *
 * The search (`SearchQueryImpl`, searchQuery.ts): each word of the query text (up to
 * `SEARCH_LIMITS.queryWords`) reads its range in key order from the end: with every filter
 * field given, the newest documents of that group first; otherwise group by group, each
 * newest first. The last word also matches as a prefix, for search-as-you-type: its own
 * entries are read first, then those of the longer words it begins (in a search with a group,
 * word by word in key order, each in the group; without one, as one range).
 * Ranges are read through the transaction like any index range, so they land in the read set
 * (a live query re-runs when a matching document is written) and see the function's own
 * writes. At most `SEARCH_LIMITS.entriesRead` entries are read in all, shared among the
 * words, and at most `SEARCH_LIMITS.bytesRead` of documents: a word that matches more
 * documents than its share contributes the first ones read. The documents found are ranked by
 * BM25 (`rank`) over those documents, and the first `SEARCH_LIMITS.results` are the result;
 * ties go to the newer document.
 */
import { checkValue, walkinError, type Value } from "../values/index.js";
import { compareValues } from "../values/compare.js";
import { encodeIndexKey, prefixSuccessor } from "../values/indexKey.js";
import type { KeyRange } from "../storage/types.js";
import type { IndexInfo, TableInfo } from "./catalog.js";
import { getFieldPath, type Doc } from "./documents.js";
import { prefixRange } from "./readSet.js";

/** A search index's definition (schema.ts, `searchIndex`). */
export interface SearchSpec {
  searchField: string;
  filterFields: string[];
}

export const SEARCH_LIMITS = {
  /**
   * Characters of a word indexed and searched for: a longer word is cut to its first ones
   * (`words`). It bounds an entry's key (at most 128 bytes of word) and so the index's size.
   */
  wordChars: 32,
  /** Distinct words indexed per document: the first ones in the text. */
  wordsPerDocument: 4_096,
  /** Words of a query searched for: the first ones. */
  queryWords: 16,
  /** Index entries a search reads, among all its words. */
  entriesRead: 4_096,
  /**
   * Bytes of documents a search reads, among all its words: half of what a function may read
   * (LIMITS.maxBytesRead), so a search of long texts ranks the ones it read rather than fail
   * the function, whatever its words match. It stops after the document that reaches this.
   */
  bytesRead: 8 * 1024 * 1024,
  /** Documents a search returns at most (Convex's limit). */
  results: 1_024,
  /**
   * Search index entries one transaction may write, counted as `searchEntriesOf` counts them.
   * Each costs about a kilobyte while the mutation commits (its key, the write set, the
   * commit log): measured, a million take a gigabyte and nine seconds, and with 4,096 words a
   * document and 16 MiB of documents a mutation could write four million. Hundreds of
   * documents of ordinary text (a few hundred words each) stay far below this.
   */
  entriesWritten: 262_144,
} as const;

/**
 * The version of how a text is split into words (`words`, `searchKeysOf`). It is part of a
 * search index's ID (catalog.ts, `searchIndexId`): entries written under another way of
 * splitting would not be found by this one's words, so a change of it makes every search
 * index a new one, built again when the server starts. Raise it with any change of the words.
 * 2: a word longer than `SEARCH_LIMITS.wordChars` is cut to that many characters (it was left out).
 */
export const WORDS_VERSION = 2;

const WORD = /[\p{L}\p{M}\p{N}]+/gu;
/** `İ` lowercased: an `i` and a combining dot above, which no `i` typed as such has. */
const DOTTED_I = /i\u0307/g;

/**
 * The words of a text, in order, repeats included: what is indexed and searched. A text is
 * compared as one writes it, not as it is encoded: lowercased, then in Unicode's composed form
 * (NFC), so "café" typed with a precomposed "é" and with "e" and a combining accent is the
 * same word; and a capital dotted `İ` (Turkish) lowercases to a plain `i`, so "İSTANBUL" is
 * found by "istanbul". A word's length is counted in characters (code points), not UTF-16 units.
 *
 * A word longer than `SEARCH_LIMITS.wordChars` is cut to its first `wordChars` characters,
 * not left out. A document's words and a query's words go through this one function, so the
 * two rules agree, step by step:
 *   1. a document with a long word W has an entry for W cut;
 *   2. a query with W, typed in full, searches for W cut: that entry, so it finds the document
 *      (left out on both sides, W could not be found at all);
 *   3. the last query word is a prefix. A prefix P of `wordChars` characters or fewer that
 *      begins W begins W cut too, so typing the start of a long word finds it. A longer P is
 *      cut as well, to exactly the characters W is cut to, so it finds W's entry (and those
 *      of other words that begin with the same characters);
 *   4. a long last word stays the last word: left out, the word before it became the prefix,
 *      and "alph" followed by a long word found "alphabet".
 * The cost: two words that share their first `wordChars` characters are one word to a search
 * (both found, ranked as one), which long identifiers, hashes and compounds rarely do.
 */
export function words(text: string): string[] {
  const ascii = asciiWords(text);
  if (ascii !== null) return ascii;
  const found: string[] = [];
  for (const match of text.toLowerCase().normalize("NFC").replace(DOTTED_I, "i").matchAll(WORD)) {
    const word = match[0];
    // At most `wordChars` units is at most as many characters.
    found.push(word.length <= SEARCH_LIMITS.wordChars ? word : firstChars(word));
  }
  return found;
}

/** A word's first `SEARCH_LIMITS.wordChars` characters: a surrogate pair is one, never split. */
function firstChars(word: string): string {
  let units = 0;
  for (let chars = 0; chars < SEARCH_LIMITS.wordChars && units < word.length; chars++) units += word.codePointAt(units)! > 0xffff ? 2 : 1;
  return word.slice(0, units);
}

/**
 * `words` of a text that is all ASCII, or null for any other. ASCII has nothing to compose and
 * no İ, and its letters and digits are [a-z0-9] once lowercased: the same words, found by one
 * pass over the characters, about twice as fast as the Unicode pattern over a
 * normalized copy (a search splits each text it ranks, up to 4,096 of them).
 */
function asciiWords(text: string): string[] | null {
  const lower = text.toLowerCase();
  const found: string[] = [];
  let start = -1;
  for (let i = 0; i <= lower.length; i++) {
    const c = i < lower.length ? lower.charCodeAt(i) : 0;
    if (c >= 0x80) return null;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      found.push(lower.slice(start, Math.min(i, start + SEARCH_LIMITS.wordChars)));
      start = -1;
    }
  }
  return found;
}

/** FNV-1a over bytes: the filter group of a document's filter values. */
function hashBytes(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The filter group of a set of filter values, in the index's filter field order. */
function groupOf(values: readonly (Value | undefined)[]): number {
  return hashBytes(encodeIndexKey(values));
}

/** A document's filter group in `spec`'s index. */
function filterGroup(spec: SearchSpec, doc: Doc): number {
  return groupOf(spec.filterFields.map((field) => getFieldPath(doc, field)));
}

/** A document's entries in a search index, one per distinct word (see the top of this file). */
export function searchKeysOf(index: IndexInfo, doc: Doc): Uint8Array[] {
  const spec = index.search!;
  const text = getFieldPath(doc, spec.searchField);
  if (typeof text !== "string") return [];
  const distinct = new Set<string>();
  for (const word of words(text)) {
    distinct.add(word);
    if (distinct.size >= SEARCH_LIMITS.wordsPerDocument) break;
  }
  if (distinct.size === 0) return [];
  const group = filterGroup(spec, doc);
  const id = doc._id as string;
  return [...distinct].map((word) => encodeIndexKey([word, group, id]));
}

/**
 * How many search index entries a write of a document touches in one of its versions' keys
 * (transaction.ts holds them per index: an ordinary index's one key, a search or vector
 * index's list; only search indexes count here). A write counts its document's entries before
 * and after: the commit removes the old ones, adds the new ones, and names every one in its
 * write set, kept or not (`buildWrites`).
 */
export function searchEntriesOf(table: TableInfo, keys: ReadonlyArray<Uint8Array | readonly Uint8Array[]> | null): number {
  if (keys === null) return 0;
  let count = 0;
  let i = 0;
  for (const index of table.indexes.values()) {
    if (index.search) count += (keys[i] as readonly Uint8Array[]).length;
    i++;
  }
  return count;
}

/** Why a transaction that would write `total` search index entries is refused, or null. */
export function searchEntriesWrittenProblem(total: number): string | null {
  if (total <= SEARCH_LIMITS.entriesWritten) return null;
  return `A mutation may write at most ${SEARCH_LIMITS.entriesWritten} search index entries (searchEntriesWritten): one per distinct ` +
    "word of each document written, before and after the write, in each search index of its table. Write fewer or shorter " +
    "documents per mutation (e.g. schedule the rest with ctx.scheduler.runAfter).";
}

/** One equality of a search filter: `.eq(field, value)`. */
interface FilterEquality {
  field: string;
  value: Value | undefined;
}

/** What `withSearchIndex`'s callback built: the text, then the equalities. */
export interface SearchFilterSpec {
  text: string;
  equalities: FilterEquality[];
}

/**
 * The builder `withSearchIndex`'s callback gets: `q.search(field, text)` once and first, then
 * `.eq(filterField, value)` any number of times. Mistakes fail here, with what to write.
 */
export class SearchFilterBuilderImpl {
  private text: string | undefined;
  private readonly equalities: FilterEquality[] = [];

  constructor(
    private readonly index: IndexInfo,
    private readonly misuse: (problem: string) => never,
  ) {}

  search(field: string, text: string): this {
    const { searchField } = this.index.search!;
    if (this.text !== undefined) this.misuse(`withSearchIndex("${this.index.name}"): search() may be called once`);
    if (field !== searchField) {
      this.misuse(`withSearchIndex("${this.index.name}"): search() names "${String(field)}", but this index searches "${searchField}"`);
    }
    if (typeof text !== "string") this.misuse(`withSearchIndex("${this.index.name}"): search() takes the text to look for as a string; received ${typeof text}`);
    this.text = text;
    return this;
  }

  eq(field: string, value: Value | undefined): this {
    const { filterFields } = this.index.search!;
    if (this.text === undefined) this.misuse(`withSearchIndex("${this.index.name}"): call search() first, then eq()`);
    if (!filterFields.includes(field)) {
      this.misuse(`withSearchIndex("${this.index.name}"): eq() names "${String(field)}", which is not one of this index's filter fields ` +
        `(${filterFields.join(", ") || "it has none"}). Add it to filterFields, or narrow the results with .filter()`);
    }
    if (value !== undefined) checkValue(value, `withSearchIndex("${this.index.name}", (q) => q.search(…).eq("${field}", …))`);
    this.equalities.push({ field, value });
    return this;
  }

  /** What was built; refuses a callback that returned something else, or never called search(). */
  build(returned: unknown): SearchFilterSpec {
    if (returned !== this) this.misuse(`withSearchIndex("${this.index.name}"): the callback must return the builder chain (q => q.search("${this.index.search!.searchField}", text))`);
    if (this.text === undefined) this.misuse(`withSearchIndex("${this.index.name}"): the callback must call search("${this.index.search!.searchField}", text)`);
    return { text: this.text, equalities: this.equalities };
  }
}

/** The words a query text searches for, in order: its first `SEARCH_LIMITS.queryWords` distinct ones. */
function searchedWords(text: string): string[] {
  return [...new Set(words(text))].slice(0, SEARCH_LIMITS.queryWords);
}

/**
 * What a search's ranked results depend on besides the data: the words it searches for (as
 * `queryWords` takes them: normalized, cut, distinct, the first 16, the last one the prefix) and
 * its filter values by field. Two searches with the same binding rank the same documents at
 * any snapshot, so a page cursor of one is a position in the other's results; a paginate
 * cursor carries a hash of it (searchQuery.ts, `cursorTag`), and another search's is refused.
 * "Hello" and "hello " are one binding (the same words); "hello" and "help" are not.
 */
export function searchBinding(filter: SearchFilterSpec): string {
  // By field, so the order of the .eq() calls does not matter; repeats of a field stay in order.
  const equalities = [...filter.equalities].sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
  const values = encodeIndexKey(equalities.flatMap(({ field, value }) => [field, value]));
  return `${JSON.stringify(searchedWords(filter.text))} ${Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("hex")}`;
}

/**
 * One word of a query: the key range of its entries, and how a document's words match it. The
 * last word's range holds every word it begins (`prefix`); `group` is the filter group the
 * search reads, when it gives every filter field.
 */
export interface QueryWord {
  word: string;
  prefix: boolean;
  range: KeyRange;
  group: number | undefined;
}

/**
 * The words a query searches for, each with its range. The last word is also a prefix (it may
 * be half typed). With an equality on every filter field, an exact word reads only the group
 * of those values; otherwise its whole range, and the documents are checked one by one.
 */
export function queryWords(index: IndexInfo, filter: SearchFilterSpec): QueryWord[] {
  const distinct = searchedWords(filter.text);
  const { filterFields } = index.search!;
  const given = new Map<string, Value | undefined>();
  let contradictory = false;
  for (const { field, value } of filter.equalities) {
    if (given.has(field) && compareValues(given.get(field), value) !== 0) contradictory = true;
    given.set(field, value);
  }
  if (contradictory) return [];
  const group = filterFields.length > 0 && filterFields.every((field) => given.has(field)) ? groupOf(filterFields.map((field) => given.get(field))) : undefined;
  return distinct.map((word, i) => {
    const prefix = i === distinct.length - 1;
    if (prefix) {
      // Every word that starts with this one: its key without the string's two-byte end.
      const start = encodeIndexKey([word]).slice(0, -2);
      const after = prefixSuccessor(start);
      return { word, prefix, group, range: { lower: { key: start, inclusive: true }, upper: after === null ? undefined : { key: after, inclusive: false } } };
    }
    return { word, prefix, group, range: prefixRange(encodeIndexKey(group === undefined ? [word] : [word, group])) };
  });
}

const UTF8 = new TextDecoder();

/**
 * For an entry's key (`[word, group, id]`), the range of that word's entries (in `group`, if
 * given), and the first key after every entry of the word, where the next word begins. The
 * word is the key's first value: a string tag, its UTF-8 bytes (a word has no NUL, so none is
 * escaped), then the 0x00 0x00 end.
 */
export function wordRangeAt(key: Uint8Array, group: number | undefined): { range: KeyRange; next: Uint8Array | null } {
  const end = key.indexOf(0, 1);
  const word = UTF8.decode(key.subarray(1, end));
  return { range: prefixRange(encodeIndexKey(group === undefined ? [word] : [word, group])), next: prefixSuccessor(key.subarray(0, end + 2)) };
}

/** Whether a document has every equality's value (a missing field is `undefined`). */
export function matchesEqualities(doc: Doc, equalities: readonly FilterEquality[]): boolean {
  for (const { field, value } of equalities) if (compareValues(getFieldPath(doc, field), value) !== 0) return false;
  return true;
}

/** BM25's usual constants: how fast repeats stop adding, and how much length counts. */
const K1 = 1.2;
const B = 0.75;

/**
 * The documents found, most relevant first, at most `SEARCH_LIMITS.results`. Relevance is BM25
 * over the documents found, each word of a document that the query matches a term of its own:
 * a word found in fewer of them weighs more, a repeat of a word adds less each time, and a word
 * in a short text counts for more than in a long one. So the last query word, a prefix, counts
 * each word it begins apart: typing "hel" ranks a text with the rare word "hel" above one with
 * the common "helpful", as it would rank "hel" typed in full. Equal scores go to the newer
 * document, then the larger ID, so the order is the same on every run.
 */
export function rank(found: readonly Doc[], spec: SearchSpec, query: readonly QueryWord[]): Doc[] {
  const exact = new Set(query.filter((q) => !q.prefix).map((q) => q.word));
  const prefixes = query.filter((q) => q.prefix).map((q) => q.word);
  const matches = (word: string) => exact.has(word) || prefixes.some((prefix) => word.startsWith(prefix));
  // Per document: its length in words, and how many times it has each word the query matches.
  const counted = found.map((doc) => {
    const text = getFieldPath(doc, spec.searchField);
    const docWords = typeof text === "string" ? words(text) : [];
    const terms = new Map<string, number>();
    for (const word of docWords) if (matches(word)) terms.set(word, (terms.get(word) ?? 0) + 1);
    return { doc, length: docWords.length, terms };
  });
  const n = found.length;
  const averageLength = counted.reduce((sum, { length }) => sum + length, 0) / Math.max(1, n) || 1;
  const documentsWith = new Map<string, number>();
  for (const { terms } of counted) for (const term of terms.keys()) documentsWith.set(term, (documentsWith.get(term) ?? 0) + 1);
  const weight = (term: string) => {
    const withTerm = documentsWith.get(term)!;
    return Math.log(1 + (n - withTerm + 0.5) / (withTerm + 0.5));
  };
  const scored = counted.map(({ doc, length, terms }) => {
    let score = 0;
    // Term by term in alphabetical order, not in the order of the text: floating-point sums
    // depend on their order, and two documents with the same words in another order must
    // score exactly alike, a tie that goes to the newer one.
    const inOrder = terms.size > 1 ? [...terms].sort(([a], [b]) => (a < b ? -1 : 1)) : terms;
    for (const [term, tf] of inOrder) score += (weight(term) * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * length) / averageLength));
    return { doc, score };
  });
  scored.sort((a, b) => b.score - a.score || (b.doc._creationTime as number) - (a.doc._creationTime as number) || ((b.doc._id as string) > (a.doc._id as string) ? 1 : -1));
  return scored.slice(0, SEARCH_LIMITS.results).map(({ doc }) => doc);
}

/** The error for a search index used as an ordinary one, or the reverse. */
export function wrongKindOfIndex(table: string, index: IndexInfo, used: "withIndex" | "withSearchIndex"): Error {
  return walkinError("MISUSE", used === "withIndex"
    ? `db.query("${table}"): "${index.name}" is a search index. Search it with .withSearchIndex("${index.name}", (q) => q.search("${index.search!.searchField}", text)).`
    : `db.query("${table}"): "${index.name}" is not a search index. Read it with .withIndex("${index.name}", ...), or declare a search index with defineTable(...).searchIndex(name, { searchField }).`);
}
