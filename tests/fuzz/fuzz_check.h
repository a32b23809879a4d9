// FUZZ_CHECK for the fuzz targets' properties: on failure it names the broken property
// (file, line, expression) before aborting, so libFuzzer's report says which one broke.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);   \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
