// ServerContext: what a handler knows about and can do to its RPC. One per call, owned
// by the call; handlers get it by reference and must not keep it past their return.
#pragma once

#include <chrono>
#include <coroutine>
#include <optional>
#include <string>
#include <string_view>

#include "uringrpc/bytes.h"
#include "uringrpc/codec.h"
#include "uringrpc/compression.h"
#include "uringrpc/metadata.h"
#include "uringrpc/peer_identity.h"
#include "uringrpc/status.h"

namespace uringrpc {

namespace rpc {
class Call;
}

// Thrown by ServerContext::abort (and by the library when a request cannot be decoded):
// ends the RPC with this status. A handler that catches everything should rethrow it.
class AbortError : public std::exception {
 public:
  AbortError(Status status, Metadata trailing = {})
      : status_(std::move(status)), trailing_(std::move(trailing)) {}
  const char* what() const noexcept override { return status_.message.c_str(); }
  const Status& status() const noexcept { return status_; }
  Metadata& trailing_metadata() noexcept { return trailing_; }

 private:
  Status status_;
  Metadata trailing_;
};

class ServerContext {
 public:
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // --- what the client sent
  // The path the client called, "/package.Service/Method" (under the server's fallback
  // handler, whatever path it was).
  std::string_view method() const noexcept;
  // Custom request metadata, in arrival order; "-bin" values already base64-decoded.
  const Metadata& client_metadata() const noexcept;
  // First value of `key`, if any.
  std::optional<std::string_view> client_metadata_value(std::string_view key) const noexcept;
  // The request's :authority (HTTP/1's host when it has none): the name the client dialed,
  // "localhost:50051", or what it set as its default authority; empty if it sent neither.
  std::string_view authority() const noexcept;
  // The request's user-agent ("grpc-c++/1.51.1 grpc-c/29.0.0 (linux; chttp2)"), empty if it
  // sent none. Also among client_metadata(), as in gRPC.
  std::string_view user_agent() const noexcept;
  // "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555" or "unix:/path", as gRPC spells peers.
  std::string_view peer() const noexcept;
  // The client's TLS certificate identity (mutual TLS, see TlsCredentials::client_certificate),
  // or null: on an insecure port, on a secure port with ClientCertificate::kNone, and when a
  // kRequest client sent no certificate. Valid until the handler returns, like the context.
  const PeerIdentity* peer_identity() const noexcept;
  std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept;
  // True once the client cancelled, the deadline passed, or the server is cancelling calls.
  bool cancelled() const noexcept;
  // Whether the request message read last (the request of a unary or server-streaming
  // handler; the last one ctx.read() or reader.next() returned) came with the gRPC
  // compressed flag set, i.e. the client compressed it; false before any message. It was
  // inflated before the handler saw it either way. gRPC's interop servers need this
  // (expect_compressed); most handlers do not care.
  bool last_read_compressed() const noexcept;

  // --- how the RPC ends
  // (A unary or client-streaming handler can also `co_return Status{code, details}`:
  // that code and details, with the trailing metadata set here, and no response.)
  void set_code(StatusCode code) noexcept;
  // The status message (grpc-message), as gRPC C++ names it.
  void set_details(std::string details);
  StatusCode code() const noexcept;
  // Rich error details for a non-OK end: a serialized google.rpc.Status, sent as the
  // trailer grpc-status-details-bin (Status::details says more). Ignored if the RPC ends OK.
  void set_error_details(std::string serialized);
  // Throws std::invalid_argument ("invalid trailing metadata: ...") for a bad key or value.
  void set_trailing_metadata(Metadata md);
  // Throws std::invalid_argument ("invalid initial metadata: ...") for a bad key or value,
  // UsageError once initial metadata went out.
  void add_initial_metadata(std::string key, std::string value);
  // Sends the response headers now instead of with the first message.
  void send_initial_metadata();
  // Ends the RPC at once with this status (by throwing AbortError). Bad trailing metadata
  // throws std::invalid_argument instead, which ends the RPC with UNKNOWN.
  [[noreturn]] void abort(StatusCode code, std::string details, Metadata trailing = {});
  // The same with a whole Status, rich details included (make_status() in protobuf.h).
  // std::invalid_argument for an OK status.
  [[noreturn]] void abort(Status status, Metadata trailing = {});

  // --- compression of the responses
  // Compresses this call's response messages with `c` (the default is
  // ServerOptions::calls.default_compression). A client that did not list `c` in its
  // grpc-accept-encoding gets them uncompressed. Throws UsageError once the response
  // headers went out (with the first message, or send_initial_metadata()).
  void set_compression(Compression c);
  // What the responses use: the choice above, or kNone if the client does not accept it.
  Compression compression() const noexcept;

  // --- messages
  // co_await ctx.write(msg): queues one response message. Suspends only while the stream's
  // queued bytes are over the write watermark. Resumes with false when the RPC can no
  // longer send (it ended or was cancelled). co_await ctx.write(msg, {.no_compress = true})
  // sends this one message uncompressed in a call that compresses.
  class [[nodiscard("co_await it: the message is sent only when the write is awaited")]] WriteAwaiter {
   public:
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept;
    bool await_resume() noexcept;

   private:
    friend class ServerContext;
    WriteAwaiter(rpc::Call& call, Bytes payload, WriteOptions options) noexcept
        : call_(call), payload_(std::move(payload)), options_(options) {}
    rpc::Call& call_;
    Bytes payload_;
    WriteOptions options_;
    bool ok_ = false;
  };
  template <class M>
  WriteAwaiter write(M&& message, WriteOptions options = {}) {
    return WriteAwaiter(call_, Codec<std::remove_cvref_t<M>>::encode(std::forward<M>(message)), options);
  }

  // co_await ctx.read<M>(): the next request message, or nullopt once the client
  // half-closed. A message that does not decode as M ends the RPC with INTERNAL.
  class [[nodiscard("co_await it: a read does nothing until it is awaited")]] RawReadAwaiter {
   public:
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h) noexcept;
    std::optional<Bytes> await_resume();

   protected:
    explicit RawReadAwaiter(rpc::Call& call) noexcept : call_(call) {}
    rpc::Call& call_;
  };
  template <class M>
  class [[nodiscard("co_await it: a read does nothing until it is awaited")]] ReadAwaiter
      : public RawReadAwaiter {
   public:
    std::optional<M> await_resume() {
      auto raw = RawReadAwaiter::await_resume();
      if (!raw) return std::nullopt;
      std::optional<M> out(std::in_place);
      if (!Codec<M>::decode(std::move(*raw), *out)) throw_undecodable();
      return out;
    }

   private:
    friend class ServerContext;
    explicit ReadAwaiter(rpc::Call& call) noexcept : RawReadAwaiter(call) {}
  };
  template <class M = Bytes>
  ReadAwaiter<M> read() noexcept {
    return ReadAwaiter<M>(call_);
  }

 private:
  // Made by the Call that this context belongs to, and only by it.
  friend class rpc::Call;
  explicit ServerContext(rpc::Call& call) noexcept : call_(call) {}
  [[noreturn]] static void throw_undecodable();
  rpc::Call& call_;
};

// Request stream of a client- or bidi-streaming handler:
//   while (auto r = co_await reader.next()) { ... }
// Shares the queue behind ctx.read(), so mixing both keeps message order.
template <class M>
class Reader {
 public:
  explicit Reader(ServerContext& ctx) noexcept : ctx_(ctx) {}
  ServerContext::ReadAwaiter<M> next() noexcept { return ctx_.read<M>(); }

 private:
  ServerContext& ctx_;
};

}  // namespace uringrpc
