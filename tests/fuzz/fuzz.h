/* What every fuzz target defines: libFuzzer's entry point. The same
 * targets are built two ways: with libFuzzer (configure --enable-fuzzer,
 * clang; `make check-fuzz`), and with replay.c, which runs every file of
 * the committed corpus through them in `make check`. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
