// Metadata: gRPC headers and trailers as an ordered multimap of key/value pairs.
// Keys are lowercase; values of keys ending in "-bin" are raw bytes (base64 on the wire).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uringrpc {

using MetadataEntry = std::pair<std::string, std::string>;
using Metadata = std::vector<MetadataEntry>;

}  // namespace uringrpc
