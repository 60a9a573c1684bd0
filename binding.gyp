# binding.gyp - build recipe for the small POSIX addon (native/posix.c).
# Built by scripts/build-native.mjs into build/Release/posix.node; loaded by src/native/posix.ts.
{
  "targets": [
    {
      "target_name": "posix",
      "sources": ["native/posix.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
