// The HTTP/2 layer's view of one request stream: the request head as it arrived, and the
// hooks the layer above attaches (its call object, the source of the response body).
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/small_pool.h"
#include "http2/request_rules.h"
#include "transport/output_queue.h"
#include "uringrpc/metadata.h"

namespace uringrpc::http2 {

using StreamId = int32_t;

// Request heads are built and dropped for every RPC: their strings come from the block
// pool (base/small_pool.h), not malloc.
using PooledString = std::basic_string<char, std::char_traits<char>, base::PoolAllocator<char>>;

// One field of a request's metadata: views of nghttp2's reference-counted buffers, holding
// a reference on each until the field goes, instead of copies of their bytes (a user-agent
// of more than 15 bytes was a pooled block, and its entry two strings to build and free, in
// every request). A -bin value the rpc layer decodes replaces the value's view with a
// pooled copy. The buffers come from the session's allocator: a field must go before its
// session does (the rpc layer's calls end before their connection's session).
class RawField {
 public:
  RawField(nghttp2_rcbuf* name_buf, nghttp2_rcbuf* value_buf, std::string_view name, std::string_view value) noexcept
      : name_buf_(name_buf), value_buf_(value_buf), name_(name), value_(value) {
    nghttp2_rcbuf_incref(name_buf_);
    nghttp2_rcbuf_incref(value_buf_);
  }
  RawField(RawField&& o) noexcept
      : name_buf_(o.name_buf_), value_buf_(o.value_buf_), owned_(o.owned_), name_(o.name_), value_(o.value_) {
    o.name_buf_ = o.value_buf_ = nullptr;
    o.owned_ = nullptr;
  }
  RawField& operator=(RawField&& o) noexcept {
    if (this != &o) {
      drop();
      name_buf_ = o.name_buf_;
      value_buf_ = o.value_buf_;
      owned_ = o.owned_;
      name_ = o.name_;
      value_ = o.value_;
      o.name_buf_ = o.value_buf_ = nullptr;
      o.owned_ = nullptr;
    }
    return *this;
  }
  RawField(const RawField&) = delete;
  RawField& operator=(const RawField&) = delete;
  ~RawField() { drop(); }

  std::string_view name() const noexcept { return name_; }
  std::string_view value() const noexcept { return value_; }
  // The value becomes a copy of these bytes (a decoded -bin value), the buffer's is let go.
  void set_value(std::string_view v) {
    char* copy = v.empty() ? nullptr : static_cast<char*>(base::pool_allocate(v.size()));
    if (copy) std::memcpy(copy, v.data(), v.size());
    free_owned();
    if (value_buf_) nghttp2_rcbuf_decref(value_buf_);
    value_buf_ = nullptr;
    owned_ = copy;
    value_ = {copy, v.size()};
  }

 private:
  void free_owned() noexcept {
    if (owned_) base::pool_deallocate(owned_, value_.size());
    owned_ = nullptr;
  }
  void drop() noexcept {
    free_owned();
    if (name_buf_) nghttp2_rcbuf_decref(name_buf_);
    if (value_buf_) nghttp2_rcbuf_decref(value_buf_);
    name_buf_ = value_buf_ = nullptr;
  }
  nghttp2_rcbuf* name_buf_;
  nghttp2_rcbuf* value_buf_;  // null once the value is owned_
  char* owned_ = nullptr;     // pooled block of value_.size() bytes, or null
  std::string_view name_;
  std::string_view value_;
};
using RawMetadata = std::vector<RawField, base::PoolAllocator<RawField>>;

// The request's pseudo-fields and the few fields the rpc layer checks are views of
// nghttp2's reference-counted header buffers (HPACK table entries for a repeated field),
// held until the rpc layer has read them in on_request: nothing is copied. Only the first
// of a repeated field is kept, so at most one reference per member is held.
struct RequestHead {
  std::string_view method;
  std::string_view path;
  std::string_view scheme;
  std::string_view authority;  // :authority, or host when there is none
  std::string_view content_type;
  std::string_view te;
  std::string_view grpc_timeout;
  bool has_grpc_timeout = false;  // present, even if empty (an empty one is an error)
  std::string_view grpc_encoding;
  std::string_view grpc_accept_encoding;
  // Every other header, in arrival order, values as on the wire: the call keeps these.
  RawMetadata metadata;

  RequestHead() = default;
  RequestHead(const RequestHead&) = delete;
  RequestHead& operator=(const RequestHead&) = delete;
  ~RequestHead() { release(); }

  // Points `field` at `bytes` (value's buffer) and holds value until release().
  void hold(std::string_view& field, nghttp2_rcbuf* value, std::string_view bytes) noexcept {
    if (!field.empty() || held_count_ == kMaxHeld) return;
    nghttp2_rcbuf_incref(value);
    held_[held_count_++] = value;
    field = bytes;
  }
  // :authority (or host) is kept by the call for its whole life: its view and its buffer
  // are held apart, so that the call can take the reference over instead of copying.
  void hold_authority(nghttp2_rcbuf* value, std::string_view bytes) noexcept {
    if (authority_buf_ || !authority.empty()) return;  // the first one is kept
    nghttp2_rcbuf_incref(value);
    authority_buf_ = value;
    authority = bytes;
  }
  // The buffer behind `authority` (null if none), with its reference: the caller's now.
  nghttp2_rcbuf* take_authority() noexcept {
    nghttp2_rcbuf* b = authority_buf_;
    authority_buf_ = nullptr;
    return b;
  }
  // Drops the views and the references behind them.
  void release() noexcept {
    for (uint8_t i = 0; i < held_count_; ++i) nghttp2_rcbuf_decref(held_[i]);
    held_count_ = 0;
    if (authority_buf_) nghttp2_rcbuf_decref(authority_buf_);
    authority_buf_ = nullptr;
    method = path = scheme = authority = content_type = te = grpc_timeout = grpc_encoding =
        grpc_accept_encoding = {};
  }

 private:
  static constexpr uint8_t kMaxHeld = 10;  // the views above
  nghttp2_rcbuf* held_[kMaxHeld];
  nghttp2_rcbuf* authority_buf_ = nullptr;
  uint8_t held_count_ = 0;
};

struct HeaderField {
  std::string_view name;
  std::string_view value;
  // Name and value outlive the frame's sending: string literals, or storage of the call
  // that lives until its stream is closed (nghttp2 drops a queued frame of a closed stream
  // unread). nghttp2 then refers to them instead of copying them (and lower-casing the
  // name: a lasting name must be lower case already), which is a third of what a
  // submit costs it. Anything built on the stack must leave this false.
  bool lasting = false;
};
// Built and dropped for every response: pooled (base/small_pool.h), not malloc'd.
using HeaderList = std::vector<HeaderField, base::PoolAllocator<HeaderField>>;

class FixedHeaders;  // fixed_headers.h

// Supplies a response body without copying it into nghttp2, registered by the layer above.
class ResponseBody {
 public:
  // How many bytes (at most max) can go now; sets *eof when the body ends after them.
  // Returning 0 without eof defers the stream until Session::resume_body().
  virtual size_t body_ready(size_t max, bool* eof) noexcept = 0;
  // Appends exactly n body bytes to out (by reference where possible).
  virtual void body_emit(size_t n, transport::OutputQueue& out) noexcept = 0;
  // Trailers to send after the body's eof (the storage must live until the call returns).
  virtual void body_trailers(HeaderList& out) noexcept = 0;
  // The same trailers as a FixedHeaders block when they are one (an OK status with nothing
  // else); null to have body_trailers() asked instead.
  virtual const FixedHeaders* body_fixed_trailers() noexcept { return nullptr; }

 protected:
  ~ResponseBody() = default;
};

// A short complete body owned by its stream: the text of an error answer to a request
// that is not gRPC (405, 415), so that proxies and probers see why. No trailers.
class CannedBody final : public ResponseBody {
 public:
  explicit CannedBody(std::string text) : text_(std::move(text)) {}
  size_t body_ready(size_t max, bool* eof) noexcept override {
    size_t n = std::min(max, text_.size() - sent_);
    if (sent_ + n == text_.size()) *eof = true;
    return n;
  }
  void body_emit(size_t n, transport::OutputQueue& out) noexcept override {
    out.append_copy(reinterpret_cast<const uint8_t*>(text_.data()) + sent_, n);
    sent_ += n;
  }
  void body_trailers(HeaderList&) noexcept override {}

 private:
  std::string text_;
  size_t sent_ = 0;
};

struct Stream {
  URINGRPC_POOLED
  StreamId id = 0;
  RequestHead head;
  size_t header_bytes = 0;   // name + value + 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts
  bool headers_too_large = false;  // over the limit: fields past it were not stored
  RequestRules rules;              // RFC 9113 section 8, checked as fields and DATA arrive
  bool malformed_reset = false;    // RST_STREAM PROTOCOL_ERROR submitted for breaking them
  bool reset_charged = false;      // a reset of ours with an error is on its way, already charged
  void* upper = nullptr;     // the rpc layer's call
  ResponseBody* body = nullptr;
  std::unique_ptr<CannedBody> canned;  // body of a canned answer (Session::submit_canned_response)
  bool remote_closed = false;  // the client half-closed (END_STREAM)
  bool last_data = false;      // the DATA frame being read carries END_STREAM
  bool local_closed = false;   // we sent END_STREAM
  bool peer_reset = false;     // the client sent RST_STREAM
  Stream* prev = nullptr;      // the session's list of open streams
  Stream* next = nullptr;
};

}  // namespace uringrpc::http2
