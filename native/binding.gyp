{
  "targets": [
    {
      "target_name": "lime_tap",
      "sources": ["binding.c", "tap.c", "sock.c", "extract.c", "flowcache.c", "engine.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "cflags!": ["-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
