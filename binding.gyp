{
  "targets": [
    {
      "target_name": "walkin_context",
      "sources": ["native/continuation_context.cc"],
      "cflags_cc": ["-Wno-cast-function-type"]
    }
  ]
}
