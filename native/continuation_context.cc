// Walk-in's continuation context: one value per thread that follows the async call chain.
//
// V8 keeps a "continuation-preserved embedder data" slot per context. Whatever the slot holds
// when a continuation is created (an `await`, a `.then`) is stored with it, put back while the
// continuation runs, and restored afterwards. That is exactly what the determinism sandbox
// needs to tell which query or mutation a resumed handler belongs to
// (src/engine/continuationContext.ts), and it costs nothing per promise.
//
// Node 20 does not expose the slot to JavaScript. Its AsyncLocalStorage propagates values with
// promise hooks instead, and once any hook is on, every promise in the process takes V8's slow
// path and calls into JavaScript: 15-20% of a one-document insert mutation's time here.
// Node 24 builds AsyncLocalStorage on this same slot; there the JavaScript side uses it and
// leaves this addon alone, since both writing the slot would clobber each other's values.
#include <node.h>

namespace {

// get(): the slot's value in the running code (undefined outside every sandbox).
void Get(const v8::FunctionCallbackInfo<v8::Value>& info) {
  info.GetReturnValue().Set(info.GetIsolate()->GetCurrentContext()->GetContinuationPreservedEmbedderData());
}

// exchange(value): sets the slot and returns what it held, so that a caller can put it back.
void Exchange(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Local<v8::Context> context = info.GetIsolate()->GetCurrentContext();
  info.GetReturnValue().Set(context->GetContinuationPreservedEmbedderData());
  context->SetContinuationPreservedEmbedderData(info[0]);
}

}  // namespace

// Context-aware, so that worker threads (each its own V8 context) can load it too.
NODE_MODULE_INIT() {
  NODE_SET_METHOD(exports, "get", Get);
  NODE_SET_METHOD(exports, "exchange", Exchange);
}
