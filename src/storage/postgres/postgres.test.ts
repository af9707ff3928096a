import { storageConformanceSuite } from "../conformance.js";
import { withLatency } from "../latency.js";
import type { Storage } from "../types.js";
import { PostgresStorage } from "./postgresStorage.js";
import { openTestSchema } from "./testDatabase.js";

const countVersions = (storage: Storage) => (storage as PostgresStorage).stats();

storageConformanceSuite("postgres", async () => {
  const target = await openTestSchema();
  return {
    storage: target.storage,
    reopen: () => target.open(),
    openSecond: () => target.open(),
    countVersions,
    cleanup: target.drop,
  };
});

storageConformanceSuite("postgres with latency", async () => {
  const target = await openTestSchema();
  const slow = (storage: Storage) => withLatency(storage, { read: [0, 3], commit: 4 });
  return {
    storage: slow(target.storage),
    reopen: async () => slow(await target.open()),
    openSecond: async () => slow(await target.open()),
    cleanup: target.drop,
  };
});
