/** Type tests of `ctx.storage`: what each kind of function may do with files, as Convex types it. */
import { describe, expectTypeOf, test } from "vitest";
import type { Id } from "../values/index.js";
import type { GenericActionCtx, GenericMutationCtx, GenericQueryCtx } from "./registration.js";
import type { AnyDataModel } from "./dataModel.js";
import type { FileMetadata } from "./storage.js";

declare const queryCtx: GenericQueryCtx<AnyDataModel>;
declare const mutationCtx: GenericMutationCtx<AnyDataModel>;
declare const actionCtx: GenericActionCtx<AnyDataModel>;
declare const file: Id<"_storage">;

describe("ctx.storage", () => {
  test("queries read URLs and metadata, and nothing else", () => {
    expectTypeOf(queryCtx.storage.getUrl(file)).toEqualTypeOf<Promise<string | null>>();
    expectTypeOf(queryCtx.storage.getMetadata(file)).toEqualTypeOf<Promise<FileMetadata | null>>();
    // @ts-expect-error a query cannot make upload URLs
    void queryCtx.storage.generateUploadUrl;
    // @ts-expect-error nor delete files
    void queryCtx.storage.delete;
  });

  test("mutations also make upload URLs and delete, but do not touch bytes", () => {
    expectTypeOf(mutationCtx.storage.generateUploadUrl()).toEqualTypeOf<Promise<string>>();
    expectTypeOf(mutationCtx.storage.delete(file)).toEqualTypeOf<Promise<void>>();
    // @ts-expect-error bytes are read in actions
    void mutationCtx.storage.get;
  });

  test("actions store and read bytes; store answers an Id<\"_storage\">", () => {
    expectTypeOf(actionCtx.storage.store(new Blob(["x"]))).toEqualTypeOf<Promise<Id<"_storage">>>();
    expectTypeOf(actionCtx.storage.get(file)).toEqualTypeOf<Promise<Blob | null>>();
    expectTypeOf(actionCtx.storage.store).parameter(1).toEqualTypeOf<{ sha256?: string } | undefined>();
  });
});
