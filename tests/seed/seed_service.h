// The seed's routing table (gRPC's tests_aio/unit/server_test.py, _GenericHandler) as
// uringrpc raw-bytes handlers. Used by the seed tests (tests/seed/server_test.cc) and by the
// seed-server program (tests/seed/seed_server_main.cc).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>

#include "uringrpc/server.h"

namespace uringrpc::seed {

inline constexpr std::string_view kSimpleUnaryUnary = "/test/SimpleUnaryUnary";
inline constexpr std::string_view kBlockForever = "/test/BlockForever";
inline constexpr std::string_view kBlockBriefly = "/test/BlockBriefly";
inline constexpr std::string_view kUnaryStreamAsyncGen = "/test/UnaryStreamAsyncGen";
inline constexpr std::string_view kUnaryStreamReaderWriter = "/test/UnaryStreamReaderWriter";
inline constexpr std::string_view kUnaryStreamEvillyMixed = "/test/UnaryStreamEvillyMixed";
inline constexpr std::string_view kStreamUnaryAsyncGen = "/test/StreamUnaryAsyncGen";
inline constexpr std::string_view kStreamUnaryReaderWriter = "/test/StreamUnaryReaderWriter";
inline constexpr std::string_view kStreamUnaryEvillyMixed = "/test/StreamUnaryEvillyMixed";
inline constexpr std::string_view kStreamStreamAsyncGen = "/test/StreamStreamAsyncGen";
inline constexpr std::string_view kStreamStreamReaderWriter = "/test/StreamStreamReaderWriter";
inline constexpr std::string_view kStreamStreamEvillyMixed = "/test/StreamStreamEvillyMixed";
inline constexpr std::string_view kUnimplementedMethod = "/test/UnimplementedMethod";  // not registered
inline constexpr std::string_view kErrorInStreamStream = "/test/ErrorInStreamStream";
inline constexpr std::string_view kErrorInStreamUnary = "/test/ErrorInStreamUnary";
inline constexpr std::string_view kErrorWithoutRaiseInUnaryUnary = "/test/ErrorWithoutRaiseInUnaryUnary";
inline constexpr std::string_view kErrorWithoutRaiseInStreamStream = "/test/ErrorWithoutRaiseInStreamStream";
inline constexpr std::string_view kInvalidTrailingMetadata = "/test/InvalidTrailingMetadata";

inline constexpr std::string_view kRequest{"\x00\x00\x00", 3};
inline constexpr std::string_view kResponse{"\x01\x01\x01", 3};
inline constexpr int kNumStreamRequests = 3;
inline constexpr int kNumStreamResponses = 5;
// test_constants.SHORT_TIMEOUT; BlockBriefly sleeps half of it.
inline constexpr std::chrono::seconds kShortTimeout{4};

class SeedService {
 public:
  // Registers every method of the seed's routing table except /test/UnimplementedMethod.
  // The service must outlive the server's calls (handlers report to it).
  void register_methods(Server& server);

  // Blocks until some handler has started (ever, as the seed's `_called` future), or
  // `timeout` passes; returns whether one did. Thread-safe.
  bool wait_for_call(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Called on the handler's shard thread each time a handler starts, with the full method
  // path. Set before the server starts; it must be thread-safe and must not block long.
  std::function<void(std::string_view method)> on_call;

 private:
  void note_call(std::string_view method);

  std::mutex mu_;
  std::condition_variable cv_;
  bool called_ = false;
};

}  // namespace uringrpc::seed
