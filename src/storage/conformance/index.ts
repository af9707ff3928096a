/**
 * `walkin/storage/conformance`: the storage conformance suite, for any `Storage`
 * implementation to run in its own vitest file.
 *
 * @example
 * import { storageConformanceSuite } from "walkin/storage/conformance";
 * storageConformanceSuite("my storage", async () => ({ storage: await openMyStorage(), cleanup: async () => {} }));
 */
export { storageConformanceSuite, type StorageUnderTest } from "../conformance.js";
export { commit, commitAll, toCommit, type TestCommit } from "./context.js";
