// Streaming load generator for perf/bench.py (stream-out-1k, stream-in-1k): a real gRPC client
// over h2c built on nghttp2's client session instead of the gRPC C++ library, because the gRPC
// C++ client (stream_client.cc) spent more of its core per message than our server did.
//
// One thread, one connection, K concurrent calls of StreamingOutputCall (server streaming) or
// StreamingInputCall (client streaming). Replies are checked without protobuf decoding: every
// server-streamed message must have the exact serialized size of a `size`-byte payload, every
// call must end with grpc-status 0 and (out) all its messages or (in) the right
// aggregated_payload_size. Large receive windows with nghttp2's automatic WINDOW_UPDATEs, sent
// when half a window is consumed, keep flow control out of the way the same for every server.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// ---- protobuf wire format: only the fields the two methods use (as in stream_client.cc).
void put_varint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

void put_len_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string grpc_frame(const std::string& msg) {
  std::string f(5, '\0');
  for (int i = 0; i < 4; ++i) f[1 + i] = static_cast<char>(msg.size() >> (24 - 8 * i));
  return f + msg;
}

// StreamingOutputCallRequest { response_parameters = count × { size } }.
std::string output_request(size_t size, int count) {
  std::string param, req;
  put_varint(param, 1 << 3);
  put_varint(param, size);
  for (int i = 0; i < count; ++i) put_len_field(req, 2, param);
  return req;
}

// StreamingInputCallRequest { payload = Payload { body = size bytes } }.
std::string input_request(size_t size) {
  std::string body, req;
  put_len_field(body, 2, std::string(size, 'x'));
  put_len_field(req, 1, body);
  return req;
}

// Serialized size of StreamingOutputCallResponse { payload { body = size bytes } }.
size_t output_response_size(size_t size) {
  size_t inner = 1 + varint_size(size) + size;
  return 1 + varint_size(inner) + inner;
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 50051;
  bool out = true;     // out: server streaming; in: client streaming
  double seconds = 10;
  size_t size = 1024;  // payload bytes per message
  int streams = 4;     // concurrent calls on the one connection
  int batch = 1000;    // messages per call
};

// One call; the session's stream user data. The deframer follows the gRPC 5-byte prefixes
// across DATA chunks: only lengths are looked at, except the one reply of client streaming.
struct Call {
  int32_t id = -1;
  int sent = 0;             // request messages handed to nghttp2 (client streaming)
  size_t offset = 0;        // bytes of the current request message already handed over
  int received = 0;         // complete reply messages
  bool bad = false;         // a reply of the wrong size
  int grpc_status = -1;
  bool status_200 = false;
  unsigned char prefix[5];
  size_t prefix_have = 0;
  size_t body_left = 0;
  std::string reply;        // the StreamingInputCallResponse, kept whole
};

class Client {
 public:
  explicit Client(const Options& o) : opt_(o), calls_(o.streams) {
    if (o.out) {
      request_ = grpc_frame(output_request(o.size, o.batch));
    } else {
      request_ = grpc_frame(input_request(o.size));
    }
    reply_size_ = output_response_size(o.size);
    path_ = o.out ? "/grpc.testing.TestService/StreamingOutputCall" : "/grpc.testing.TestService/StreamingInputCall";
    authority_ = o.host + ":" + std::to_string(o.port);
  }

  bool connect_and_run() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(opt_.port));
    inet_pton(AF_INET, opt_.host.c_str(), &a.sin_addr);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return error("connect failed");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    // 8 MiB per stream, 32 MiB per connection: more than a call's 1 MB of replies, so the
    // server never waits for a WINDOW_UPDATE, and those go out in bulk.
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 8 << 20}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 32 << 20);

    start_ = now_ns();
    end_ = start_ + static_cast<uint64_t>(opt_.seconds * 1e9);
    for (auto& c : calls_) begin(c);
    std::vector<uint8_t> in(256 << 10);
    std::string out;
    while (now_ns() < end_ && !failed_) {
      while (out.size() < (256u << 10)) {  // gather what nghttp2 has into one write
        const uint8_t* p;
        ssize_t n = nghttp2_session_mem_send(session_, &p);
        if (n < 0) return error("nghttp2_session_mem_send failed");
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(p), n);
      }
      pollfd pfd{fd_, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      if (pfd.revents & POLLOUT) {
        ssize_t w = send(fd_, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) return error("send failed");
        if (w > 0) out.erase(0, w);
      }
      if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = recv(fd_, in.data(), in.size(), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) return error("connection closed by the server");
        if (r > 0 && nghttp2_session_mem_recv(session_, in.data(), r) < 0) return error("HTTP/2 protocol error");
      }
    }
    elapsed_ = (std::min(now_ns(), end_) - start_) / 1e9;
    return !failed_;
  }

  void print(double client_cpu) const {
    double mb = static_cast<double>(messages_) * opt_.size / 1e6;
    std::printf("h2-stream-client mode=%s target=%s seconds=%.3f streams=%d batch=%d size=%zu messages=%llu "
                "calls=%llu errors=%llu mb_per_s=%.2f msgs_per_s=%.1f client_cpu_s=%.3f\n",
                opt_.out ? "out" : "in", authority_.c_str(), elapsed_, opt_.streams, opt_.batch, opt_.size,
                static_cast<unsigned long long>(messages_), static_cast<unsigned long long>(calls_ok_),
                static_cast<unsigned long long>(errors_), elapsed_ > 0 ? mb / elapsed_ : 0.0,
                elapsed_ > 0 ? messages_ / elapsed_ : 0.0, client_cpu);
    if (!first_error_.empty()) std::fprintf(stderr, "h2-stream-client: first error: %s\n", first_error_.c_str());
  }

  bool ok() const { return errors_ == 0 && messages_ > 0; }
  ~Client() {
    if (session_) nghttp2_session_del(session_);
    if (fd_ >= 0) close(fd_);
  }

 private:
  bool in_window() const { return now_ns() < end_; }

  bool error(const std::string& what) {
    ++errors_;
    failed_ = true;
    if (first_error_.empty()) first_error_ = what;
    return false;
  }

  void begin(Call& c) {
    c = Call{};
    const std::string content_type = "application/grpc", te = "trailers", post = "POST", http = "http";
    auto nv = [](const char* name, const std::string& value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    nghttp2_nv hdrs[] = {nv(":method", post),         nv(":scheme", http),
                         nv(":path", path_),          nv(":authority", authority_),
                         nv("content-type", content_type), nv("te", te)};
    nghttp2_data_provider prd;
    prd.source.ptr = &c;
    prd.read_callback = read_request;
    c.id = nghttp2_submit_request(session_, nullptr, hdrs, 6, &prd, &c);
    if (c.id < 0) error("nghttp2_submit_request failed");
  }

  // Request DATA: one gRPC message per DATA frame, as a client writing message by message does.
  static ssize_t read_request(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                              nghttp2_data_source* src, void* user) {
    auto* self = static_cast<Client*>(user);
    auto* c = static_cast<Call*>(src->ptr);
    const std::string& m = self->request_;
    int total = self->opt_.out ? 1 : self->opt_.batch;
    if (c->sent >= total || (!self->opt_.out && !self->in_window() && c->offset == 0)) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    // A message is split only where the server's flow-control window ends mid-message.
    size_t n = std::min(length, m.size() - c->offset);
    std::memcpy(buf, m.data() + c->offset, n);
    c->offset += n;
    if (c->offset < m.size()) return static_cast<ssize_t>(n);
    c->offset = 0;
    ++c->sent;
    if (!self->opt_.out) ++self->messages_;
    if (c->sent >= total) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* self = static_cast<Client*>(user);
    auto* c = static_cast<Call*>(nghttp2_session_get_stream_user_data(self->session_, frame->hd.stream_id));
    if (!c) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen), v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") c->status_200 = v == "200";
    if (n == "grpc-status") c->grpc_status = v == "0" ? 0 : 1;
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len, void* user) {
    auto* self = static_cast<Client*>(user);
    auto* c = static_cast<Call*>(nghttp2_session_get_stream_user_data(self->session_, stream_id));
    if (!c) return 0;
    while (len > 0) {
      if (c->prefix_have < 5) {
        size_t n = std::min(len, 5 - c->prefix_have);
        std::memcpy(c->prefix + c->prefix_have, data, n);
        c->prefix_have += n;
        data += n;
        len -= n;
        if (c->prefix_have < 5) break;
        c->body_left = (size_t{c->prefix[1]} << 24) | (size_t{c->prefix[2]} << 16) | (size_t{c->prefix[3]} << 8) |
                       c->prefix[4];
        if (self->opt_.out && c->body_left != self->reply_size_) c->bad = true;
        if (c->body_left == 0) self->message_done(*c);
        continue;
      }
      size_t n = std::min(len, c->body_left);
      if (!self->opt_.out) c->reply.append(reinterpret_cast<const char*>(data), n);
      data += n;
      len -= n;
      c->body_left -= n;
      if (c->body_left == 0) self->message_done(*c);
    }
    return 0;
  }

  void message_done(Call& c) {
    c.prefix_have = 0;
    ++c.received;
    if (opt_.out && in_window()) ++messages_;
  }

  // StreamingInputCallResponse.aggregated_payload_size (field 1); -1 if garbled.
  static int64_t aggregated(const std::string& m) {
    if (m.empty()) return 0;
    if (m[0] != 0x08) return -1;
    uint64_t v = 0;
    for (size_t i = 1, shift = 0; i < m.size() && shift < 64; ++i, shift += 7) {
      v |= static_cast<uint64_t>(m[i] & 0x7f) << shift;
      if ((m[i] & 0x80) == 0) return static_cast<int64_t>(v);
    }
    return -1;
  }

  static int on_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    auto* self = static_cast<Client*>(user);
    auto* c = static_cast<Call*>(nghttp2_session_get_stream_user_data(self->session_, stream_id));
    if (!c) return 0;
    if (!self->in_window()) return 0;  // cut off at the deadline: not judged
    const Options& o = self->opt_;
    std::string why;
    if (error_code) why = "stream reset, code " + std::to_string(error_code);
    else if (!c->status_200) why = "HTTP status not 200";
    else if (c->grpc_status != 0) why = "grpc-status not 0";
    else if (c->bad || c->prefix_have || (o.out && c->received != o.batch)) why = "wrong replies";
    else if (!o.out && (c->received != 1 || aggregated(c->reply) != static_cast<int64_t>(c->sent * o.size)))
      why = "wrong aggregated_payload_size";
    if (why.empty()) {
      ++self->calls_ok_;
    } else {
      ++self->errors_;
      if (self->first_error_.empty()) self->first_error_ = why;
    }
    self->begin(*c);  // the same slot runs the next call
    return 0;
  }

  Options opt_;
  std::vector<Call> calls_;
  std::string request_, path_, authority_;
  size_t reply_size_ = 0;
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  uint64_t start_ = 0, end_ = 0;
  double elapsed_ = 0;
  uint64_t messages_ = 0, calls_ok_ = 0, errors_ = 0;
  bool failed_ = false;
  std::string first_error_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: h2-stream-client --port N [--host 127.0.0.1] --mode out|in [--seconds S] [--size BYTES]\n"
               "                        [--streams K] [--batch MESSAGES_PER_CALL]\n"
               "  out: StreamingOutputCall, BATCH replies of SIZE bytes per call (server streaming)\n"
               "  in:  StreamingInputCall, BATCH requests of SIZE bytes per call (client streaming)\n"
               "prints one line: h2-stream-client key=value ...; exit 1 on any error or no messages\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    std::string v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = std::atoi(v.c_str());
    else if (a == "--mode" && (v == "out" || v == "in")) o.out = v == "out";
    else if (a == "--seconds") o.seconds = std::atof(v.c_str());
    else if (a == "--size") o.size = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--streams") o.streams = std::atoi(v.c_str());
    else if (a == "--batch") o.batch = std::atoi(v.c_str());
    else usage();
  }
  if (o.port <= 0 || o.seconds <= 0 || o.streams < 1 || o.batch < 1 || o.size > 16000) usage();

  Client client(o);
  client.connect_and_run();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  client.print(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return client.ok() ? 0 : 1;
}
