/**
 * `walkin/server`: everything used to write backend functions: the schema, the function
 * builders, custom builders, references, crons and the context types.
 */
export { defineSchema, defineTable, TableDefinition, SchemaDefinition } from "./schema.js";
export type { DataModelFromSchemaDefinition, IndexDefinition, SchemaOptions, SearchIndexConfig, VectorIndexConfig } from "./schema.js";
export type { FilterExpression, VectorFilterBuilder, VectorSearch, VectorSearchQuery } from "./vectorSearch.js";
export { query, internalQuery, mutation, internalMutation, action, internalAction, registerFunction, isRegisteredFunction } from "./functions.js";
export { customQuery, customMutation, customAction, customCtx, customCtxAndArgs, NoOp } from "./customFunctions.js";
export { Triggers, type Change, type Trigger } from "./triggers.js";
export { wrapDatabaseReader, wrapDatabaseWriter, type Rules, type Rule, type RLSConfig } from "./rowLevelSecurity.js";
export { filter } from "./filteredQuery.js";
export type { Customization, CustomBuilder, CustomCtx, CustomInputResult, Overwrite } from "./customFunctions.js";
export {
  queryGeneric,
  internalQueryGeneric,
  mutationGeneric,
  internalMutationGeneric,
  actionGeneric,
  internalActionGeneric,
  httpActionGeneric,
} from "./convexNames.js";
export type { DefaultFunctionArgs, GenericDatabaseReader, GenericDatabaseWriter, WithOptionalSystemFields } from "./convexNames.js";
export { anyApi, filterApi, getFunctionName, makeFunctionReference } from "./api.js";
export type {
  AnyApi,
  AnyFunctionReference,
  ApiFromModules,
  ArgsAndOptions,
  FilterApi,
  FunctionArgs,
  FunctionReference,
  FunctionReturnType,
  OptionalRestArgs,
} from "./api.js";
export { cronJobs, CronJobs, type CronJob, type Crons } from "./cron.js";
export { defineEngineHooks, isEngineHooks, type AuthenticateCtx, type AuthenticateHook, type EngineHooks } from "./hooks.js";
export { paginationOptsValidator, paginationResultValidator } from "./pagination.js";
export {
  httpRouter,
  httpAction,
  HttpRouter,
  isHttpRouter,
  ROUTABLE_HTTP_METHODS,
  type PublicHttpAction,
  type RouteSpec,
  type HttpMethod,
  type RoutableMethod,
} from "./router.js";
export type {
  ActionBuilder,
  ArgsOf,
  Auth,
  CallerRequest,
  FunctionBuilder,
  FunctionType,
  FunctionVisibility,
  GenericActionCtx,
  GenericMutationCtx,
  GenericQueryCtx,
  MutationBuilder,
  QueryBuilder,
  RegisteredAction,
  RegisteredFunction,
  RegisteredMutation,
  RegisteredQuery,
  SchedulableFunctionReference,
  ScheduledFunctionId,
  Scheduler,
  UserIdentity,
  UserIdentityAttributes,
} from "./registration.js";
export type { FileMetadata, StorageActionWriter, StorageId, StorageReader, StorageWriter } from "./storage.js";
export type {
  BaseDatabaseReader,
  SystemDataModel,
  DatabaseReader,
  DatabaseWriter,
  Expression,
  ExpressionOrValue,
  FilterBuilder,
  IndexRange,
  IndexRangeBuilder,
  OrderedQuery,
  PaginationOptions,
  PaginationResult,
  Query,
  QueryInitializer,
  SearchFilter,
  SearchFilterBuilder,
  SearchFilterFinalizer,
} from "./database.js";
export type {
  AnyDataModel,
  DocumentByInfo,
  DocumentByName,
  FieldPaths,
  FieldTypeFromFieldPath,
  GenericDataModel,
  GenericDocument,
  GenericFieldPaths,
  GenericSearchIndexConfig,
  GenericTableIndexes,
  GenericTableInfo,
  GenericTableSearchIndexes,
  GenericTableVectorIndexes,
  GenericVectorIndexConfig,
  Indexes,
  IndexNames,
  SearchIndexes,
  SearchIndexNames,
  VectorIndexes,
  VectorIndexNames,
  NamedVectorIndex,
  NamedTableInfo,
  SystemFields,
  TableNamesInDataModel,
  WithoutSystemFields,
  WithSystemFields,
} from "./dataModel.js";
export { v, WalkinError, isWalkinError } from "../values/index.js";
export type { GenericId, Id, Infer } from "../values/index.js";

import type { AnyDataModel, DocumentByName, GenericDataModel, TableNamesInDataModel } from "./dataModel.js";
import type { GenericMutationCtx, GenericQueryCtx, GenericActionCtx } from "./registration.js";
/** Context types for the untyped builders; codegen writes ones bound to the schema. */
export type QueryCtx<DM extends GenericDataModel = AnyDataModel> = GenericQueryCtx<DM>;
export type MutationCtx<DM extends GenericDataModel = AnyDataModel> = GenericMutationCtx<DM>;
export type ActionCtx<DM extends GenericDataModel = AnyDataModel> = GenericActionCtx<DM>;
/**
 * A page cursor, as Convex names it: `paginate`'s `continueCursor` (and `splitCursor`), passed
 * back as the next page's `cursor`. Opaque: only a cursor `paginate` returned means anything.
 * @example
 * let cursor: Cursor | null = null;
 */
export type Cursor = string;
/** A document of a table of a data model: `Doc<DataModel, "users">` (codegen writes `Doc<"users">`). */
export type Doc<DM extends GenericDataModel, T extends TableNamesInDataModel<DM>> = DocumentByName<DM, T>;
