// A gzip bomb for the tests of the decompression limit (unit and end-to-end): MiBs of
// zeros in about a thousandth of the space, built in milliseconds.
#pragma once

#include <string>

namespace uringrpc::testing {

// `blocks` MiB of zeros gzipped at about 1000:1. Compressing 1 GiB takes seconds, so it is
// built the way a bomb maker would: a 1 MiB block of zeros ended with Z_FULL_FLUSH (which
// resets the history, so the block stands alone) is repeated, then the gzip trailer for
// the whole (CRC32 combined per block, ISIZE).
std::string gzip_of_zero_mebibytes(int blocks);

}  // namespace uringrpc::testing
