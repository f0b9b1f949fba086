# Hardening builds: BYOL_SANITIZE (everything under AddressSanitizer + UndefinedBehaviorSanitizer)
# and BYOL_FUZZ (the libFuzzer targets in tests/fuzz). Included by the root CMakeLists.txt
# before any target is defined, so the sanitizer flags reach every target.
option(BYOL_SANITIZE "Build everything with -fsanitize=address,undefined" OFF)
option(BYOL_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

if(BYOL_SANITIZE)
  # -fno-sanitize-recover: a UB report fails the test that triggered it instead of scrolling by.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

if(BYOL_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "BYOL_FUZZ needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang")
  endif()
  # The fuzz targets link their own instrumented copy of the core (tests/fuzz/CMakeLists.txt);
  # the rest of the tree builds as usual.
  # FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (libFuzzer's convention) lets the fuzzers past
  # checksums that random mutations never satisfy (PNG chunk CRCs).
  set(BYOL_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -g -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
  set(BYOL_FUZZ_LINK_FLAGS -fsanitize=fuzzer,address,undefined)
endif()
