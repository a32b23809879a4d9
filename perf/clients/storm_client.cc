// Connection-storm load generator for perf/bench.py (scenario conn-storm): every connection
// makes one real gRPC EmptyCall over h2c and closes, C connections in flight, for a fixed time.
// h2load spent more of its core per connection than the servers did (and restarts between
// bursts), so the server's core never saturated; this client does only what a connection needs.
//
// One thread, io_uring, raw sockets: socket, connect+send+recv (linked), the ACKs and close
// are all ring operations, submitted together once per loop turn, so the client pays no
// syscall per step (on this VM a syscall costs ~1 µs; on loopback the kernel's TCP work for
// a packet already runs on the sender's core, the client's). Each connection writes one
// pre-built blob (preface, SETTINGS, HEADERS, DATA with the empty message and END_STREAM),
// ACKs the server's SETTINGS and PINGs, decodes the response headers and trailers with
// nghttp2's HPACK inflater, and counts the call only on :status 200, a 5-byte empty reply and
// grpc-status 0. Then it closes: FIN by default (what a real client does; see --sources on
// TIME_WAIT) or RST with --close rst.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <liburing.h>
#include <nghttp2/nghttp2.h>
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

// ---- the request blob, encoded once
void put_frame_header(std::string& out, size_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  const unsigned char h[9] = {static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 8),
                              static_cast<unsigned char>(len), type, flags,
                              static_cast<unsigned char>(stream >> 24), static_cast<unsigned char>(stream >> 16),
                              static_cast<unsigned char>(stream >> 8), static_cast<unsigned char>(stream)};
  out.append(reinterpret_cast<const char*>(h), 9);
}

// HPACK integer with an N-bit prefix (RFC 7541 5.1); `first` carries the representation bits.
void put_hpack_int(std::string& out, uint8_t first, int prefix_bits, size_t v) {
  size_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out.push_back(static_cast<char>(first | v));
    return;
  }
  out.push_back(static_cast<char>(first | max));
  for (v -= max; v >= 128; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}

// Literal without indexing, no Huffman: the server's dynamic table is never touched, so every
// connection costs the server the same decoding work. name_index 0 means a literal name.
void put_literal(std::string& out, int name_index, const std::string& name, const std::string& value) {
  put_hpack_int(out, 0x00, 4, name_index);
  if (name_index == 0) {
    put_hpack_int(out, 0x00, 7, name.size());
    out += name;
  }
  put_hpack_int(out, 0x00, 7, value.size());
  out += value;
}

std::string request_blob(const std::string& authority, const std::string& path) {
  std::string blob = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  put_frame_header(blob, 0, 0x4, 0, 0);  // SETTINGS, defaults
  std::string block;
  block.push_back(static_cast<char>(0x83));  // :method POST (static index 3)
  block.push_back(static_cast<char>(0x86));  // :scheme http (static index 6)
  put_literal(block, 4, "", path);           // :path
  put_literal(block, 1, "", authority);      // :authority
  put_literal(block, 31, "", "application/grpc");  // content-type
  put_literal(block, 0, "te", "trailers");
  put_frame_header(blob, block.size(), 0x1, 0x4, 1);  // HEADERS, END_HEADERS, stream 1
  blob += block;
  put_frame_header(blob, 5, 0x0, 0x1, 1);  // DATA, END_STREAM: the empty message
  blob.append(5, '\0');
  return blob;
}

// ---- connections
enum Failure { kConnect, kEof, kReset, kGoaway, kStatus, kReply, kProtocol, kTimeout, kFailureKinds };
const char* const kFailureNames[kFailureKinds] = {"connect", "eof",      "rst_stream", "goaway",
                                                  "status",  "reply",    "protocol",   "timeout"};

constexpr size_t kInCap = 16384 + 9 + 4096;  // one frame of the default max size, plus slack

// Ring operations carry (slot << 3 | op) as user_data. A slot is reused only once none of its
// operations is in flight, so a completion always belongs to the slot's current connection.
enum Op : uint64_t { kSocketOp, kConnectOp, kSendOp, kRecvOp, kAckOp, kCloseOp };

struct Conn {
  enum State { kIdle, kActive, kClosing } state = kIdle;
  int fd = -1;
  int inflight = 0;          // ring operations not yet completed
  int outcome = -2;          // -2 waiting, -1 success, else a Failure; decided once
  int blocks = 0;            // header blocks finished on stream 1 (1: headers, 2: trailers)
  bool block_ends_stream = false;
  bool status_200 = false;
  int grpc_status = -1;
  size_t data_bytes = 0;
  uint64_t started = 0;
  nghttp2_hd_inflater* inflater = nullptr;
  int acks_used = 0;         // ACK buffers in flight
  unsigned ack_next = 0;     // sends on one socket complete in order: the buffers rotate
  char acks[4][64];          // SETTINGS/PING ACKs stay put until their send completes
  size_t in_len = 0;
  unsigned char in[kInCap];
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 50051;
  int conns = 128;
  double seconds = 10;
  double timeout = 5;
  bool rst = false;
  int sources = 16;
};

class Storm {
 public:
  explicit Storm(const Options& o)
      : opt_(o), conns_(o.conns),
        blob_(request_blob(o.host + ":" + std::to_string(o.port), "/grpc.testing.TestService/EmptyCall")) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(4096, &ring_, &p) != 0) {
      p = io_uring_params{};  // older kernels: no deferred task work, same behaviour
      if (int r = io_uring_queue_init_params(4096, &ring_, &p); r != 0) {
        std::fprintf(stderr, "storm-client: io_uring_queue_init: %s\n", std::strerror(-r));
        std::exit(1);
      }
    }
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr);
    latencies_.reserve(1 << 20);
  }

  void run() {
    start_ = now_ns();
    end_ = start_ + static_cast<uint64_t>(opt_.seconds * 1e9);
    for (auto& c : conns_) open(c);
    uint64_t next_scan = start_;
    for (;;) {
      __kernel_timespec ts{0, 50000000};
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      uint64_t t = now_ns();
      if (t >= end_) break;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_completion(conns_[cqe->user_data >> 3], static_cast<Op>(cqe->user_data & 7), cqe->res);
      }
      io_uring_cq_advance(&ring_, seen);
      if (t >= next_scan) {  // per-connection deadline, and restart slots a failed socket() left
        next_scan = t + 100000000ull;
        for (auto& c : conns_) {
          if (c.state == kActive && c.outcome == -2 && t > c.started &&
              t - c.started > static_cast<uint64_t>(opt_.timeout * 1e9)) {
            decide(c, kTimeout);
            shutdown(c.fd, SHUT_RDWR);  // completes the pending recv, then the slot closes
          }
          if (c.state == Conn::kIdle) open(c);
        }
      }
    }
    elapsed_ = (std::min(now_ns(), end_) - start_) / 1e9;
    // Connections still open are cut off at the deadline: neither success nor failure; the
    // process exits and the kernel closes them.
  }

  void print(double client_cpu) {
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) -> double {
      if (latencies_.empty()) return 0;
      size_t k = std::min(latencies_.size() - 1, static_cast<size_t>(p / 100.0 * latencies_.size()));
      return latencies_[k] / 1e3;
    };
    uint64_t failures = 0;
    std::string kinds;
    for (int k = 0; k < kFailureKinds; ++k) {
      failures += failed_[k];
      if (failed_[k]) kinds += std::string(kinds.empty() ? "" : ",") + kFailureNames[k] + ":" + std::to_string(failed_[k]);
    }
    std::printf("storm-client target=%s:%d seconds=%.3f conns=%d close=%s completed=%llu failures=%llu "
                "failure_kinds=%s goaways=%llu conn_per_s=%.1f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
                "client_cpu_s=%.3f\n",
                opt_.host.c_str(), opt_.port, elapsed_, opt_.conns, opt_.rst ? "rst" : "fin",
                static_cast<unsigned long long>(completed_), static_cast<unsigned long long>(failures),
                kinds.empty() ? "none" : kinds.c_str(), static_cast<unsigned long long>(goaways_),
                elapsed_ > 0 ? completed_ / elapsed_ : 0.0, pct(50), pct(99), pct(99.9), client_cpu);
  }

  bool ok() const {
    for (auto f : failed_)
      if (f) return false;
    return completed_ > 0;
  }

 private:
  static constexpr Conn::State kActive = Conn::kActive;

  io_uring_sqe* sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring_);
    if (!e) {  // SQ full: hand what is queued to the kernel and take a fresh entry
      io_uring_submit(&ring_);
      e = io_uring_get_sqe(&ring_);
    }
    return e;
  }

  void tag(io_uring_sqe* e, Conn& c, Op op) {
    io_uring_sqe_set_data64(e, static_cast<uint64_t>(&c - conns_.data()) << 3 | op);
    ++c.inflight;
  }

  void open(Conn& c) {
    c.state = Conn::kIdle;
    if (now_ns() >= end_) return;
    c.state = kActive;
    c.outcome = -2;
    c.blocks = 0;
    c.block_ends_stream = c.status_200 = false;
    c.grpc_status = -1;
    c.data_bytes = c.in_len = 0;
    c.acks_used = 0;
    c.ack_next = 0;
    c.started = now_ns();
    io_uring_sqe* e = sqe();
    io_uring_prep_socket(e, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
    tag(e, c, kSocketOp);
  }

  // After socket(): the few options by plain syscalls, then connect -> send blob -> recv as
  // one linked chain. The 200-byte blob always fits a new socket's send buffer.
  void on_socket(Conn& c, int fd) {
    c.fd = fd;
    int one = 1;
    if (opt_.rst) {
      linger l{1, 0};  // close() sends RST: no TIME_WAIT left behind on either side
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    if (opt_.sources > 1) {
      // Spread connections over 127.0.0.1..N: each source address has its own ephemeral port
      // range, so the TIME_WAIT sockets our FIN closes leave behind never exhaust it (the
      // kernel reuses a loopback TIME_WAIT port only after a second). The port is still picked
      // at connect time (IP_BIND_ADDRESS_NO_PORT).
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(0x7f000001u + next_source_++ % opt_.sources);
      if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return decide(c, kConnect);
    }
    // No TCP_NODELAY: the blob is the first write and goes out at once; the SETTINGS ACK may
    // wait for an ACK, which no server waits for, and close flushes it. One syscall less.
    io_uring_sqe* e = sqe();
    io_uring_prep_connect(e, fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    e->flags |= IOSQE_IO_LINK;
    tag(e, c, kConnectOp);
    e = sqe();
    io_uring_prep_send(e, fd, blob_.data(), blob_.size(), MSG_NOSIGNAL);
    e->flags |= IOSQE_IO_LINK;
    tag(e, c, kSendOp);
    recv(c);
  }

  void recv(Conn& c) {
    io_uring_sqe* e = sqe();
    io_uring_prep_recv(e, c.fd, c.in + c.in_len, kInCap - c.in_len, 0);
    tag(e, c, kRecvOp);
  }

  // The first verdict on a connection stands; later errors of the same connection (the
  // cancelled rest of a chain, the recv ended by a shutdown) add nothing.
  void decide(Conn& c, int outcome) {
    if (c.outcome != -2) return;
    c.outcome = outcome;
    if (outcome == -1) {
      if (now_ns() < end_) {
        ++completed_;
        latencies_.push_back(now_ns() - c.started);
      }
    } else if (now_ns() < end_) {
      ++failed_[outcome];
    }
  }

  void on_completion(Conn& c, Op op, int res) {
    --c.inflight;
    switch (op) {
      case kSocketOp:
        if (res < 0) {
          decide(c, kConnect);
          c.state = Conn::kIdle;  // nothing to close; the next scan retries the slot
          return;
        }
        on_socket(c, res);
        break;
      case kConnectOp:
      case kSendOp:
        if (res < 0) decide(c, kConnect);
        else if (op == kSendOp && static_cast<size_t>(res) != blob_.size()) decide(c, kConnect);
        break;
      case kRecvOp:
        if (res <= 0) decide(c, res == -ECANCELED ? kConnect : kEof);
        else on_bytes(c, res);
        break;
      case kAckOp:
        --c.acks_used;
        break;
      case kCloseOp:
        c.fd = -1;
        if (c.inflater) {
          nghttp2_hd_inflate_del(c.inflater);
          c.inflater = nullptr;
        }
        return open(c);
    }
    if (c.state == kActive && c.outcome != -2 && c.inflight == 0) {
      // Last operation of a finished connection: close it and start the next.
      c.state = Conn::kClosing;
      io_uring_sqe* e = sqe();
      io_uring_prep_close(e, c.fd);
      tag(e, c, kCloseOp);
    }
  }

  void on_bytes(Conn& c, int n) {
    c.in_len += n;
    std::string reply;  // SETTINGS and PING ACKs, sent in one go after this read
    size_t off = 0;
    int outcome = -2;
    while (outcome == -2 && c.in_len - off >= 9) {
      const unsigned char* h = c.in + off;
      size_t len = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      if (len + 9 > kInCap) {
        outcome = kProtocol;
        break;
      }
      if (c.in_len - off < len + 9) break;
      outcome = on_frame(c, h[3], h[4], ((h[5] & 0x7fu) << 24) | (h[6] << 16) | (h[7] << 8) | h[8], h + 9, len, reply);
      off += 9 + len;
    }
    std::memmove(c.in, c.in + off, c.in_len - off);
    c.in_len -= off;
    // The ACKs go out even when the call just ended: the server sees what a real client sends.
    if (!reply.empty() && reply.size() <= sizeof c.acks[0] && c.acks_used < 4) {
      char* buf = c.acks[c.ack_next++ & 3];
      ++c.acks_used;
      std::memcpy(buf, reply.data(), reply.size());
      io_uring_sqe* e = sqe();
      io_uring_prep_send(e, c.fd, buf, reply.size(), MSG_NOSIGNAL);
      tag(e, c, kAckOp);
    }
    if (outcome == -2) return recv(c);
    decide(c, outcome);
  }

  // Returns -2 to keep reading, -1 when the call ended well, or the Failure.
  int on_frame(Conn& c, uint8_t type, uint8_t flags, uint32_t stream, const unsigned char* p, size_t len,
               std::string& reply) {
    switch (type) {
      case 0x0: {  // DATA
        size_t pad = (flags & 0x8) && len ? p[0] + 1 : 0;
        if (stream == 1) c.data_bytes += len - std::min(pad, len);
        return (stream == 1 && (flags & 0x1)) ? kReply : -2;  // the stream must end with trailers
      }
      case 0x1: {  // HEADERS
        size_t skip = 0, pad = 0;
        if (flags & 0x8) {
          if (!len) return kProtocol;
          pad = p[0];
          skip = 1;
        }
        if (flags & 0x20) skip += 5;
        if (skip + pad > len) return kProtocol;
        c.block_ends_stream = flags & 0x1;
        return inflate(c, stream, p + skip, len - skip - pad, flags & 0x4);
      }
      case 0x9:  // CONTINUATION
        return inflate(c, stream, p, len, flags & 0x4);
      case 0x3:  // RST_STREAM
        return stream == 1 ? kReset : -2;
      case 0x4:  // SETTINGS
        if (!(flags & 0x1)) reply.append("\0\0\0\x04\x01\0\0\0\0", 9);
        return -2;
      case 0x6:  // PING: answer with the same 8 bytes
        if (!(flags & 0x1) && len == 8) {
          reply.append("\0\0\x08\x06\x01\0\0\0\0", 9);
          reply.append(reinterpret_cast<const char*>(p), 8);
        }
        return -2;
      case 0x7: {  // GOAWAY: a failure only if stream 1 will not be answered
        ++goaways_;
        uint32_t last = len >= 4 ? ((p[0] & 0x7fu) << 24) | (p[1] << 16) | (p[2] << 8) | p[3] : 0;
        return last < 1 ? kGoaway : -2;
      }
      default:  // WINDOW_UPDATE, PRIORITY, PUSH_PROMISE (push is never used by gRPC), unknown
        return -2;
    }
  }

  int inflate(Conn& c, uint32_t stream, const unsigned char* p, size_t len, bool end_headers) {
    if (!c.inflater && nghttp2_hd_inflate_new(&c.inflater) != 0) return kProtocol;
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t r = nghttp2_hd_inflate_hd2(c.inflater, &nv, &flags, p, len, end_headers);
      if (r < 0) return kProtocol;
      p += r;
      len -= r;
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) && stream == 1) {
        std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
        if (name == ":status") c.status_200 = value == "200";
        if (name == "grpc-status") c.grpc_status = value.size() == 1 && value[0] == '0' ? 0 : 1;
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(c.inflater);
        break;
      }
      if (len == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT)) break;
    }
    if (!end_headers || stream != 1) return -2;
    ++c.blocks;
    if (!c.status_200) return kStatus;
    if (!c.block_ends_stream) return c.blocks == 1 ? -2 : kProtocol;
    if (c.grpc_status != 0) return kStatus;
    return c.data_bytes == 5 ? -1 : kReply;  // EmptyCall answers one empty message
  }

  Options opt_;
  std::vector<Conn> conns_;
  std::string blob_;
  io_uring ring_{};
  sockaddr_in addr_{};
  uint32_t next_source_ = 0;
  uint64_t start_ = 0, end_ = 0;
  double elapsed_ = 0;
  uint64_t completed_ = 0, goaways_ = 0;  // GOAWAYs seen, whether or not stream 1 was answered
  uint64_t failed_[kFailureKinds] = {};
  std::vector<uint64_t> latencies_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: storm-client --port N [--host 127.0.0.1] [--conns C] [--seconds S] [--timeout S]\n"
               "                    [--close fin|rst] [--sources N]\n"
               "  keeps C connections in flight, each one EmptyCall then close, for S seconds\n"
               "  --sources N: spread over source addresses 127.0.0.1..N (TIME_WAIT; 1 = no bind)\n"
               "prints one line: storm-client key=value ...; exit 1 on any failure or no call completed\n");
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
    else if (a == "--conns") o.conns = std::atoi(v.c_str());
    else if (a == "--seconds") o.seconds = std::atof(v.c_str());
    else if (a == "--timeout") o.timeout = std::atof(v.c_str());
    else if (a == "--close" && (v == "fin" || v == "rst")) o.rst = v == "rst";
    else if (a == "--sources") o.sources = std::atoi(v.c_str());
    else usage();
  }
  if (o.port <= 0 || o.conns < 1 || o.seconds <= 0 || o.sources < 1) usage();
  if (o.host.rfind("127.", 0) != 0) o.sources = 1;  // other source addresses exist only on loopback
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  Storm storm(o);
  storm.run();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  storm.print(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return storm.ok() ? 0 : 1;
}
